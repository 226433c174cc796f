package replay_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

// FuzzTracker feeds arbitrary frames, one per line, through the ARI decoder
// and the tracker, and encodes whatever comes out: nothing may panic, and
// every event of a call must carry the next sequence number.
func FuzzTracker(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join("..", "testdata", "ari", "s*"))
	// Seeds are windows of a few consecutive frames, not whole traces: a
	// call's start, middle or end each seed a path through the tracker,
	// and small inputs keep every execution fast.
	const window = 12
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "events.ndjson"))
		if err != nil {
			f.Fatal(err)
		}
		if strings.Contains(d, "s05-") {
			f.Add(data) // one whole call, the shortest, so hangups are seeded too
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		for i := 0; i < len(lines); i += window {
			f.Add(bytes.Join(lines[i:min(i+window, len(lines))], nil))
		}
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		tr := cdr.NewTracker(cdr.DefaultConfig())
		seq := map[string]int{}
		for _, frame := range bytes.Split(stream, []byte("\n")) {
			in, ok, err := ari.Decode(frame)
			if err != nil || !ok {
				continue
			}
			for _, ev := range tr.Handle(in) {
				if ev.Seq != seq[ev.CallID]+1 {
					t.Fatalf("call %s: event %s has seq %d after %d", ev.CallID, ev.Type, ev.Seq, seq[ev.CallID])
				}
				seq[ev.CallID] = ev.Seq
				for _, f := range []formats.Format{formats.JSON, formats.Form} {
					if _, _, err := formats.Encode(f, ev, formats.Options{}); err != nil {
						t.Fatalf("encode %s: %v", ev.Type, err)
					}
				}
			}
		}
	})
}
