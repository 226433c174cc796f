package books_test

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	require.NoError(t, err)
	return recs
}

func epochTime(t *testing.T, s string) time.Time {
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	sec, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(sec, 10, 64)
	us, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	_ = f
	return time.Unix(n, us*1000).UTC()
}

// recording is a recorded Asterisk run: its ARI stream and the directory
// of its cel.csv and cdr.csv.
type recording struct {
	dir string
	ins []cdr.Input
}

func asteriskRecordings(t *testing.T) []recording {
	dirs, err := filepath.Glob("../testdata/ari/[st]*")
	require.NoError(t, err)
	dirs = append(dirs, "../testdata/ari-load/run1_10cps")
	var out []recording
	for _, dir := range dirs {
		ev := filepath.Join(dir, "events.ndjson")
		if _, err := os.Stat(ev); err != nil {
			ev += ".gz"
		}
		out = append(out, recording{dir: dir, ins: decoded(t, ev, ari.Decode, nil)})
	}
	return out
}

// gaps are the kills and restarts each recording goes through: the
// recording's span cut in thirds and quarters, so that calls end in a gap,
// begin in it, and begin and end in it; the load run also gets gaps of 3 s
// and 10 s as kill -9 and a restart give them.
func gaps(ins []cdr.Input) [][2]time.Time {
	first, last := ins[0].Time, ins[0].Time
	for _, in := range ins {
		if in.Time.Before(first) {
			first = in.Time
		}
		if in.Time.After(last) {
			last = in.Time
		}
	}
	span := last.Sub(first)
	at := func(f float64) time.Time { return first.Add(time.Duration(f * float64(span))) }
	g := [][2]time.Time{
		{at(0.33), at(0.66)},
		{at(0.25), at(0.5)},
		{at(0.5), at(0.75)},
		{first.Add(-time.Second), at(0.5)},
		{at(0.5), last.Add(-time.Millisecond)},
		{at(0.5), last.Add(2 * time.Second)},
		{first.Add(-time.Second), last.Add(2 * time.Second)},
	}
	if span > time.Minute {
		// A long run's calls are cut often enough by the gaps below.
		g = g[2:]
	}
	if span > time.Minute {
		g = append(g, [2]time.Time{at(0.1), at(0.1).Add(3 * time.Second)}, [2]time.Time{at(0.55), at(0.55).Add(10 * time.Second)})
	}
	return g
}

// score runs every recording through every gap with books b(rec) (nil:
// none) and counts the calls whose webhooks equal the uninterrupted
// run's, but for the fields estimates lists for the recording: of all
// calls, of those the gap touched (alive at some moment of it, to the
// second), and of those that ended in it. differ names the others by
// recording, kill and call.
func score(t *testing.T, recs []recording, b func(recording) books.Books, estimates map[string][]string) (s tally, differ []string) {
	s.used = map[string]map[string]int{}
	for _, rec := range recs {
		name := filepath.Base(rec.dir)
		want := uninterrupted(t, rec.ins)
		for _, g := range gaps(rec.ins) {
			var bk books.Books
			if b != nil {
				bk = b(rec)
			}
			got := interrupted(t, rec.ins, bk, g[0], g[1])
			_, used, d := compare(want, got, estimates[name])
			for f, n := range used {
				if s.used[name] == nil {
					s.used[name] = map[string]int{}
				}
				s.used[name][f] += n
			}
			for id := range want {
				same := !slices.Contains(d, id)
				s.total++
				if same {
					s.same++
				}
				if want.span(id, g[0], g[1]) {
					s.touched++
					if same {
						s.touchedSame++
					}
				}
				if want.endedIn(id, g[0], g[1]) {
					s.ended++
					if same {
						s.endedSame++
					} else {
						s.endedDiffer = append(s.endedDiffer, name+" "+g[0].Format("15:04:05.000")+" "+id)
					}
				}
			}
			for _, id := range d {
				if _, ok := want[id]; !ok {
					s.extra++
				}
				differ = append(differ, name+" "+g[0].Format("15:04:05.000")+" "+id+" "+explain(want, got, id))
			}
		}
	}
	return s, differ
}

// tally counts calls the same as a run that never stopped; used counts,
// per recording, the calls that differed only in each estimated field.
type tally struct {
	same, total, touchedSame, touched, endedSame, ended, extra int
	endedDiffer                                                []string
	used                                                       map[string]map[string]int
}

func (s tally) String() string {
	return fmt.Sprintf("%d of %d calls that ended in the gap, %d of %d calls the gap touched, %d of %d in all, %d calls that never were; estimated fields accepted: %v",
		s.endedSame, s.ended, s.touchedSame, s.touched, s.same, s.total, s.extra, s.used)
}

// TestFaxBegunInTheGapIsAFax: no CEL row names ReceiveFAX, the CDR's
// lastapp does; a fax call that began and ended in the gap is told as a
// fax (fax_init, call type fax), as a run that never stopped tells it.
func TestFaxBegunInTheGapIsAFax(t *testing.T) {
	rec := recording{dir: "../testdata/ari/s09-inbound-fax"}
	rec.ins = decoded(t, filepath.Join(rec.dir, "events.ndjson"), ari.Decode, nil)
	b, err := books.Open(filepath.Join(rec.dir, "cel.csv"))
	require.NoError(t, err)
	first, last := rec.ins[0].Time, rec.ins[len(rec.ins)-1].Time
	want := uninterrupted(t, rec.ins)
	got := interrupted(t, rec.ins, b, first.Add(-time.Second), last.Add(2*time.Second))
	types := func(w webhooks) (out []string) {
		for _, hs := range w {
			for _, h := range hs {
				f := flatten(h.body)
				out = append(out, f["event_type"]+" "+f["cdr.bf_calltype"])
			}
		}
		return out
	}
	require.Contains(t, types(want), `"fax_init" `)
	require.Equal(t, types(want), types(got))
}
