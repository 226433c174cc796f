package replay_test

import (
	"path/filepath"
	"testing"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr/cdrtest"
)

// FuzzTracker feeds arbitrary frames, one per line, through the ARI decoder
// and the tracker, and encodes whatever comes out: nothing may panic, and
// every event of a call must carry the next sequence number.
func FuzzTracker(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "ari", "[st]*", "events.ndjson"))
	cdrtest.AddWindows(f, files, 12, "s05-")
	f.Fuzz(func(t *testing.T, stream []byte) { cdrtest.Feed(t, stream, ari.Decode) })
}
