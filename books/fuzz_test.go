package books

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cdr/cdrtest"
)

// The books are files and tables other software writes, read after a gap
// with nobody watching: whatever they hold, reading them may fail but may
// not panic, and what they tell goes through the tracker as the stream's
// inputs do.

// fuzzWindow is every time a fuzzed record can state.
var fuzzWindow = [2]time.Time{time.Unix(0, 0), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}

// FuzzFreeSWITCHRecords reads arbitrary leg records, separated by NUL
// bytes, as mod_json_cdr, mod_xml_cdr and FusionPBX write them, and tells
// the calls they hold to a tracker as a gap's recovery would.
func FuzzFreeSWITCHRecords(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join("..", "testdata", "esl", "[fg]*", "cdr"))
	if len(dirs) == 0 {
		f.Fatal("no recordings in testdata/esl")
	}
	for _, d := range dirs {
		names, _ := filepath.Glob(filepath.Join(d, "*.cdr.json"))
		var legs [][]byte
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				f.Fatal(err)
			}
			legs = append(legs, b)
		}
		f.Add(bytes.Join(legs, []byte{0}))
	}
	f.Add([]byte(`<?xml version="1.0"?><cdr core-uuid="c"><variables><uuid>a</uuid><start_uepoch>1795351553796887</start_uepoch><end_uepoch>1795351560000000</end_uepoch></variables><callflow><caller_profile><caller_id_number>1000</caller_id_number></caller_profile></callflow></cdr>`))
	f.Add([]byte(`{"cdr":{"variables":{"uuid":"a","start_uepoch":"1795351553796887"},"callflow":{"caller_profile":{"caller_id_number":"1000"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var legs []fsLeg
		for _, part := range bytes.Split(data, []byte{0}) {
			parses := []func([]byte) (fsLeg, error){parseLeg, parseFusionLeg}
			if p := bytes.TrimSpace(part); len(p) > 0 && p[0] == '<' {
				parses = []func([]byte) (fsLeg, error){parseXMLLeg}
			}
			for _, parse := range parses {
				if l, err := parse(part); err == nil {
					legs = append(legs, l)
				}
			}
		}
		for _, aOnly := range []bool{false, true} {
			tellTracker(t, fsCalls(legs, nil, fuzzWindow[0], fuzzWindow[1], aOnly))
		}
	})
}

// FuzzAsteriskRecords reads arbitrary CEL and CDR files as cel_custom and
// cdr_custom write them and tells the calls they hold to a tracker as a
// gap's recovery would.
func FuzzAsteriskRecords(f *testing.F) {
	dirs, _ := filepath.Glob(filepath.Join("..", "testdata", "ari", "[st]*"))
	if len(dirs) == 0 {
		f.Fatal("no recordings in testdata/ari")
	}
	for _, d := range dirs {
		cel, err := os.ReadFile(filepath.Join(d, "cel.csv"))
		if err != nil {
			f.Fatal(err)
		}
		cdrs, err := os.ReadFile(filepath.Join(d, "cdr.csv"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(cel, cdrs)
	}
	f.Fuzz(func(t *testing.T, celCSV, cdrCSV []byte) {
		dir := t.TempDir()
		celPath, cdrPath := filepath.Join(dir, "cel.csv"), filepath.Join(dir, "cdr.csv")
		if err := os.WriteFile(celPath, celCSV, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cdrPath, cdrCSV, 0o600); err != nil {
			t.Fatal(err)
		}
		cel, err := readCEL(celPath)
		if err != nil {
			return
		}
		cdrs, err := readCDR(cdrPath)
		if err != nil {
			cdrs = nil // CEL alone: a call still up has no CDR row
		}
		tellTracker(t, asteriskCalls(cel, cdrs, fuzzWindow[1]))
	})
}

// tellTracker plans the calls for a gap over all time, once as calls that
// began in it and once as calls the tracker followed from their first
// leg, and feeds the inputs to a tracker, checking what comes out as
// FuzzTracker does (cdrtest.Sequence).
func tellTracker(t *testing.T, calls []Call) {
	t.Helper()
	for _, follows := range []func(string) bool{
		func(string) bool { return false },
		func(leg string) bool { return len(calls) > 0 && leg == calls[0].ID },
	} {
		tr := cdr.NewTracker(cdr.DefaultConfig())
		var seq cdrtest.Sequence
		ins := Plan(calls, fuzzWindow[0], fuzzWindow[1], follows, nil, nil)
		for _, joined := range Join(calls, fuzzWindow[1], follows, func(string) bool { return true }) {
			ins = append(ins, joined...)
		}
		for _, in := range ins {
			if !in.Books {
				t.Fatalf("an input the books told is not marked Books: %+v", in)
			}
			seq.Check(t, tr.Handle(in))
		}
	}
}
