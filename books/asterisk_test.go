package books_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/follow/followtest"
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

// recording is a recorded run: the frames the PBX sent (ARI's or the
// event socket's), each one's time, their inputs as a tracker meets them,
// and the directory of its books.
type recording struct {
	dir    string
	pbx    string // "ari" or "esl": the fake that plays it
	frames [][]byte
	at     []time.Time // each frame's time (zero when it has none)
	ins    []cdr.Input
}

// loadRecording reads the recording in dir (events.ndjson, plain or
// gzip-compressed) of a PBX pbx.
func loadRecording(t *testing.T, dir, pbx string) recording {
	t.Helper()
	ev := filepath.Join(dir, "events.ndjson")
	if _, err := os.Stat(ev); err != nil {
		ev += ".gz"
	}
	rec := recording{dir: dir, pbx: pbx}
	var err error
	rec.frames, err = followtest.LoadNDJSON(ev)
	require.NoError(t, err)
	stamp := []byte(`"timestamp":"`)
	if pbx == "esl" {
		stamp = []byte(`"Event-Date-Timestamp":"`)
	}
	for _, fr := range rec.frames {
		var at time.Time
		if i := bytes.Index(fr, stamp); i >= 0 {
			v := fr[i+len(stamp):]
			v = v[:max(bytes.IndexByte(v, '"'), 0)]
			if pbx == "esl" {
				us, err := strconv.ParseInt(string(v), 10, 64)
				require.NoError(t, err)
				at = time.UnixMicro(us)
			} else {
				at, err = time.Parse("2006-01-02T15:04:05.000-0700", string(v))
				require.NoError(t, err)
			}
		}
		rec.at = append(rec.at, at)
	}
	if pbx == "esl" {
		rec.ins = decoded(t, ev, esl.Decode, esl.Reorder)
	} else {
		rec.ins = decoded(t, ev, ari.Decode, nil)
	}
	return rec
}

func asteriskRecordings(t *testing.T) []recording {
	dirs, err := filepath.Glob("../testdata/ari/[st]*")
	require.NoError(t, err)
	dirs = append(dirs, "../testdata/ari-load/run1_10cps")
	var out []recording
	for _, dir := range dirs {
		out = append(out, loadRecording(t, dir, "ari"))
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
	t.Helper()
	type run struct {
		rec  recording
		g    [2]time.Time
		bk   books.Books
		got  webhooks
		err  error
		done chan struct{}
	}
	var runs []*run
	for _, rec := range recs {
		for _, g := range gaps(rec.ins) {
			r := &run{rec: rec, g: g, done: make(chan struct{})}
			if b != nil {
				r.bk = b(rec)
			}
			runs = append(runs, r)
		}
	}
	// The second lives run side by side: each waits on its sockets much
	// of the time.
	next := make(chan *run)
	for range 2 * runtime.GOMAXPROCS(0) {
		go func() {
			for r := range next {
				r.got, r.err = restartedOnce(r.rec, r.bk, r.g[0], r.g[1])
				close(r.done)
			}
		}()
	}
	go func() {
		for _, r := range runs {
			next <- r
		}
		close(next)
	}()
	s.used = map[string]map[string]int{}
	wants := map[string]webhooks{}
	for _, r := range runs {
		<-r.done
		require.NoError(t, r.err)
		rec, g, got := r.rec, r.g, r.got
		name := filepath.Base(rec.dir)
		want, ok := wants[rec.dir]
		if !ok {
			want = uninterrupted(t, rec.ins)
			wants[rec.dir] = want
		}
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
				t.Logf("a call that never was: %s, gap %s to %s: %s", name, g[0].Format("15:04:05.000"), g[1].Format("15:04:05.000"), explain(want, got, id))
			}
			differ = append(differ, name+" "+g[0].Format("15:04:05.000")+" "+id+" "+explain(want, got, id))
		}
	}
	return s, differ
}

// runs keeps the second lives run without books or with jsonCDR's, by
// recording and gap: several tests score the same recordings so.
var runs sync.Map

// jsonBooks are the recordings' mod_json_cdr directories, opened once.
var jsonBooks sync.Map

// jsonCDR is the directory of mod_json_cdr files FreeSWITCH wrote for
// rec, opened once.
func jsonCDR(t *testing.T, rec recording) books.Books {
	if b, ok := jsonBooks.Load(rec.dir); ok {
		return b.(books.Books)
	}
	b, err := books.Open(filepath.Join(rec.dir, "cdr"))
	require.NoError(t, err)
	got, _ := jsonBooks.LoadOrStore(rec.dir, b)
	return got.(books.Books)
}

// restartedOnce is restarted, run once per recording and gap with no
// books or jsonCDR's.
func restartedOnce(rec recording, b books.Books, kill, back time.Time) (webhooks, error) {
	kind := "none"
	if b != nil {
		if j, ok := jsonBooks.Load(rec.dir); !ok || j != b {
			return restarted(rec, b, kill, back)
		}
		kind = "json"
	}
	key := fmt.Sprint(kind, rec.dir, kill.UnixNano(), back.UnixNano())
	if w, ok := runs.Load(key); ok {
		return w.(webhooks), nil
	}
	w, err := restarted(rec, b, kill, back)
	if err == nil {
		runs.Store(key, w)
	}
	return w, err
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
	rec := loadRecording(t, "../testdata/ari/s09-inbound-fax", "ari")
	b, err := books.Open(filepath.Join(rec.dir, "cel.csv"))
	require.NoError(t, err)
	first, last := rec.ins[0].Time, rec.ins[len(rec.ins)-1].Time
	want := uninterrupted(t, rec.ins)
	got := interrupted(t, rec, b, first.Add(-time.Second), last.Add(2*time.Second))
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
