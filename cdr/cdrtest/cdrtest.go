// Package cdrtest holds what the tracker's fuzz targets share: seeds cut
// from recordings, and the checks every event the tracker sends must pass.
package cdrtest

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

// AddWindows seeds f with windows of window consecutive lines of each
// file (a call's start, middle or end each seed a path through the
// tracker, and small inputs keep every execution fast), and with the whole
// of each file whose path contains whole (one short call, so that its
// hangups are seeded too).
func AddWindows(f *testing.F, files []string, window int, whole string) {
	f.Helper()
	if len(files) == 0 {
		f.Fatal("no recordings to seed from")
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if whole != "" && strings.Contains(name, whole) {
			f.Add(data)
		}
		lines := bytes.SplitAfter(data, []byte("\n"))
		for i := 0; i < len(lines); i += window {
			f.Add(bytes.Join(lines[i:min(i+window, len(lines))], nil))
		}
	}
}

// Sequence checks the events a tracker sends, in the order it sends them:
// every event of a call carries the next sequence number, and encodes in
// every format. The zero value is ready.
type Sequence struct{ seq map[string]int }

// Check fails t at the first event of evs that breaks either rule.
func (s *Sequence) Check(t testing.TB, evs []cdr.Event) {
	t.Helper()
	if s.seq == nil {
		s.seq = map[string]int{}
	}
	for _, ev := range evs {
		if ev.Seq != s.seq[ev.CallID]+1 {
			t.Fatalf("call %s: event %s has seq %d after %d", ev.CallID, ev.Type, ev.Seq, s.seq[ev.CallID])
		}
		s.seq[ev.CallID] = ev.Seq
		for _, f := range []formats.Format{formats.JSON, formats.Form} {
			if _, _, err := formats.Encode(f, ev, formats.Options{}); err != nil {
				t.Fatalf("encode %s: %v", ev.Type, err)
			}
		}
	}
}

// Feed feeds stream, a frame or event a line, through decode and a new
// tracker with the default configuration, checking every event it sends
// (Sequence). A line decode rejects or does not map is skipped.
func Feed(t testing.TB, stream []byte, decode func([]byte) (cdr.Input, bool, error)) {
	t.Helper()
	tr := cdr.NewTracker(cdr.DefaultConfig())
	var seq Sequence
	for _, line := range bytes.Split(stream, []byte("\n")) {
		if in, ok, err := decode(line); err == nil && ok {
			seq.Check(t, tr.Handle(in))
		}
	}
}
