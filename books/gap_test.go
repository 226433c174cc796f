package books_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
	"github.com/kanca/kanca/replay"
)

// decoded decodes a recorded stream into tracker inputs.
func decoded(t *testing.T, path string, decode func([]byte) (cdr.Input, bool, error), reorder func(io.Reader) io.Reader) []cdr.Input {
	t.Helper()
	ins, err := replay.Inputs(path, decode, reorder)
	require.NoError(t, err)
	return ins
}

// webhooks are a run's events, call by call, as JSON bodies without the
// marks that say how kanca learned of a call ("recovered", "reconciled"):
// a run that never stopped has none. Each keeps the fields its record
// names estimated, which a comparison may accept (compare). Timestamps
// are cut to the second, the precision of every time in the CDR: the PBX
// stamps its books and its stream apart (CEL rows in microseconds, ARI
// events in milliseconds, some of a millisecond or two apart).
type webhooks map[string][]hook

type hook struct {
	body      string
	estimated []string // the record's Estimated
}

func (w webhooks) add(evs []cdr.Event) error {
	for _, ev := range evs {
		ev.Time = ev.Time.Truncate(time.Second)
		var est []string
		if ev.CDR != nil {
			rec := *ev.CDR
			est = rec.Estimated
			rec.Recovered, rec.Reconciled, rec.Estimated = false, false, nil
			ev.CDR = &rec
		}
		body, _, err := formats.Encode(formats.JSON, ev, formats.Options{Location: time.UTC})
		if err != nil {
			return err
		}
		w[ev.CallID] = append(w[ev.CallID], hook{body: string(body), estimated: est})
	}
	return nil
}

// span reports whether call id was alive at some moment of [from, to],
// by its first and last webhook's timestamp (whole seconds).
func (w webhooks) span(id string, from, to time.Time) bool {
	first, last := w.times(id)
	return first <= to.Unix() && last >= from.Unix()
}

// endedIn reports whether call id ended in [from, to] (whole seconds).
func (w webhooks) endedIn(id string, from, to time.Time) bool {
	_, last := w.times(id)
	return last >= from.Unix() && last <= to.Unix()
}

// times are the timestamps of call id's first and last webhooks.
func (w webhooks) times(id string) (first, last int64) {
	for i, h := range w[id] {
		var m struct{ Timestamp int64 }
		if json.Unmarshal([]byte(h.body), &m) != nil {
			continue
		}
		if i == 0 {
			first = m.Timestamp / 1e6
		}
		last = m.Timestamp / 1e6
	}
	return first, last
}

// uninterrupted is the run that never stopped.
func uninterrupted(t *testing.T, ins []cdr.Input) webhooks {
	w := webhooks{}
	tr := cdr.NewTracker(cdr.DefaultConfig())
	for _, in := range ins {
		require.NoError(t, w.add(tr.Handle(in)))
	}
	return w
}

// interrupted is a run killed after the last input stamped at or before
// kill and started again at back (see restarted), failing the test if
// the second life could not run.
func interrupted(t *testing.T, rec recording, b books.Books, kill, back time.Time) webhooks {
	t.Helper()
	w, err := restarted(rec, b, kill, back)
	require.NoError(t, err)
	return w
}

// restarted is a run killed after the last input stamped at or before
// kill and started again at back. The first life is a tracker fed the
// recording's inputs, with the journal and the latest call end a store
// would hold. The second life is kanca's own: the recording's fake PBX
// (aritest, esltest) lives through every frame stamped up to back with
// nobody listening, then the real pipeline restores the tracker from
// that journal, seeds the real source (ari.Source, esl.Source), which
// connects, lists, asks the PBX about the channels it adopts and
// reconciles; on the reconcile the gap is told from the books b (nil:
// none) as kanca run does (pipeline.Gap), and the frames after
// back are played to it. The clock the source reads is the recording's:
// back, then the latest input's time.
func restarted(rec recording, b books.Books, kill, back time.Time) (webhooks, error) {
	ins := rec.ins
	w := webhooks{}
	k1 := slices.IndexFunc(ins, func(in cdr.Input) bool { return in.Time.After(kill) })
	if k1 < 0 {
		return nil, fmt.Errorf("kill %s falls after the recording", kill)
	}

	// The first life, with what its store keeps: the journal of the
	// calls live at the kill, and when the latest call it stored ended.
	tr := cdr.NewTracker(cdr.DefaultConfig())
	var journal []cdr.Input
	finished := map[string]bool{} // a channel id never comes back
	var lastEnd time.Time
	ended := map[string]time.Time{} // the calls the store holds, by uuid
	for _, in := range ins[:k1] {
		if tr.Needs(in) {
			journal = append(journal, in)
		}
		evs := tr.Handle(in)
		if err := w.add(evs); err != nil {
			return nil, err
		}
		for _, ev := range evs {
			if ev.Type == cdr.CallHangup && ev.CDR != nil {
				ended[ev.CallID] = ev.CDR.HangupTime
				if ev.CDR.HangupTime.After(lastEnd) {
					lastEnd = ev.CDR.HangupTime
				}
			}
		}
		for _, id := range tr.Finished(nil) {
			finished[id] = true
		}
	}
	journal = slices.DeleteFunc(journal, func(j cdr.Input) bool { return finished[j.Channel.ID] })
	if lastEnd.IsZero() && len(journal) == 0 {
		// Killed before any call: a store that has heard the PBX holds
		// calls that ended by the kill at the latest (an earlier end
		// would only add calls it saw end to the window the books read).
		lastEnd = kill
	}
	evs, err := secondLife(rec, b, storeOf{ins: journal, lastEnd: lastEnd.Truncate(time.Millisecond), ended: ended}, back)
	if err != nil {
		return nil, fmt.Errorf("%s killed at %s, back at %s: %w", filepath.Base(rec.dir), kill.Format("15:04:05.000"), back.Format("15:04:05.000"), err)
	}
	if err := w.add(evs); err != nil {
		return nil, err
	}
	return w, nil
}

// secondLife runs kanca's pipeline against the recording's fake PBX,
// which has lived through the frames up to back (see restarted), and
// returns the events it made, in order.
func secondLife(rec recording, b books.Books, store storeOf, back time.Time) ([]cdr.Event, error) {
	// The journal as the store gives it back: each entry through JSON.
	var stored []cdr.Input
	for _, in := range store.ins {
		raw, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		var out cdr.Input
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, err
		}
		stored = append(stored, out)
	}
	n := slices.IndexFunc(rec.at, func(at time.Time) bool { return at.After(back) })
	if n < 0 {
		n = len(rec.frames)
	}
	// The PBX's clock: back, then that of the latest input kanca took.
	var latest atomic.Int64
	latest.Store(back.UnixNano())
	clock := func() time.Time { return time.Unix(0, latest.Load()) }
	observe := func(in cdr.Input) {
		for {
			was := latest.Load()
			if in.Time.UnixNano() <= was || latest.CompareAndSwap(was, in.Time.UnixNano()) {
				return
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	tcfg := cdr.DefaultConfig()
	out := &kept{}
	p := &pipeline.Pipeline{
		Tracker:    cdr.NewTracker(tcfg),
		Outbox:     out,
		Dispatcher: idle{},
		Journal:    storeOf{ins: stored, lastEnd: store.lastEnd, ended: store.ended},
		Logger:     log,
		Observe:    observe,
	}
	switch {
	case b != nil && rec.pbx == "ari":
		p.Books = asOf{Books: b, now: clock}
	case b != nil:
		p.Books = b
	}
	reconciled := make(chan struct{}, 1)
	onGap := func(g follow.Gap) {
		if b != nil {
			p.Gap(ctx, g)
		}
		select {
		case reconciled <- struct{}{}:
		default:
		}
	}
	backoff := follow.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	var play func(...[]byte)
	var read func() uint64 // frames the source read
	want := uint64(0)      // frames it is to read
	switch rec.pbx {
	case "ari":
		srv := aritest.NewServer(aritest.Options{Clock: clock})
		defer srv.Close()
		srv.Play(rec.frames[:n]...)
		srv.LiveThrough(n)
		src, err := ari.New(ari.Config{URL: srv.URL, User: "kanca", Password: "kanca", Logger: log, Backoff: backoff,
			OnReconcile: onGap, ReadsVariable: tcfg.ReadsVariable, DIDVariables: tcfg.DIDVariables, Now: clock})
		if err != nil {
			return nil, err
		}
		p.Source = src
		p.PBXID = func(ctx context.Context) (string, error) {
			info, err := src.Client().Info(ctx)
			return info.EntityID, err
		}
		play, read = srv.Play, func() uint64 { return src.Stats().Frames }
		want = uint64(len(rec.frames) - n)
	case "esl":
		srv := esltest.NewServer(esltest.Options{})
		defer srv.Close()
		srv.Play(rec.frames[:n]...)
		srv.LiveThrough(n)
		src, err := esl.New(esl.Config{Addr: srv.Addr, Password: "ClueCon", Logger: log, Backoff: backoff,
			OnReconcile: onGap, DIDVariables: tcfg.DIDVariables, Now: clock})
		if err != nil {
			return nil, err
		}
		p.Source = src
		play, read = srv.Play, func() uint64 { return src.Stats().Events }
		for _, fr := range rec.frames[n:] {
			if subscribed(fr) {
				want++
			}
		}
	default:
		return nil, fmt.Errorf("no fake for PBX %q", rec.pbx)
	}
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stop := func() error {
		cancel()
		return <-done
	}
	select {
	case <-reconciled:
	case err := <-done:
		return nil, fmt.Errorf("kanca stopped before it reconciled: %v", err)
	case <-time.After(30 * time.Second):
		stop()
		return nil, errors.New("kanca did not reconcile within 30 s")
	}
	// Only now does the PBX go on: what the list and the questions about
	// it answered is the PBX at back.
	play(rec.frames[n:]...)
	deadline := time.Now().Add(60 * time.Second)
	for read() < want {
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("kanca read %d of the %d frames after back within 60 s", read(), want)
		}
		time.Sleep(time.Millisecond)
	}
	// Every frame was read: its inputs are handed over before the source
	// sees the end, and what the tracker took is committed before Run
	// returns.
	if err := stop(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	return out.events, nil
}

// subscribed says whether esl.Source subscribes to the event fr.
func subscribed(fr []byte) bool {
	var e struct {
		Name     string `json:"Event-Name"`
		Subclass string `json:"Event-Subclass"`
	}
	if json.Unmarshal(fr, &e) != nil {
		return false
	}
	i := slices.Index(esl.Subscription, "CUSTOM")
	if e.Name == "CUSTOM" {
		return slices.Contains(esl.Subscription[i+1:], e.Subclass)
	}
	return slices.Contains(esl.Subscription[:i], e.Name)
}

// asOf are Asterisk's books as they stood at now: the CEL holds a row
// once its event happened, and the recordings' books hold the whole run,
// later rows too. (kanca reads the second its list's Date names to its
// end: rows of that second after the list are not written yet.) A
// FreeSWITCH leg's file is written when the leg ends, and the books
// already leave out the legs that end after the window.
type asOf struct {
	books.Books
	now func() time.Time
}

func (b asOf) Calls(ctx context.Context, from, to time.Time) ([]books.Call, error) {
	calls, err := b.Books.Calls(ctx, from, to)
	if err != nil {
		return nil, err
	}
	// When each row was written: its own time, or, for books that keep
	// less than the event's (whole seconds), the event's.
	written := map[string][]cdr.Input{}
	if tt, ok := b.Books.(trueTimes); ok {
		truth, err := tt.truth.Calls(ctx, from, to.Add(time.Second))
		if err != nil {
			return nil, err
		}
		for _, c := range truth {
			written[c.ID] = c.Inputs
		}
	}
	now := b.now()
	var out []books.Call
	for _, c := range calls {
		at := written[c.ID]
		if len(at) != len(c.Inputs) {
			at = c.Inputs
		}
		var kept []cdr.Input
		for i, in := range c.Inputs {
			if !at[i].Time.After(now) {
				kept = append(kept, in)
			}
		}
		c.Inputs = kept
		if len(c.Inputs) > 0 {
			out = append(out, c)
		}
	}
	return out, nil
}

// trueTimes are books that keep less than the events' times (FreePBX's
// whole seconds), with the same rows as they were timed (truth): asOf
// shows a row once its event happened, not once the second it is
// stamped with began.
type trueTimes struct {
	books.Books
	truth books.Books
}

// kept is an outbox that keeps the events it is given, in order.
type kept struct {
	mu     sync.Mutex
	events []cdr.Event
}

func (k *kept) Commit(_ context.Context, units []hooks.Unit) ([]error, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, u := range units {
		k.events = append(k.events, u.Events...)
	}
	return make([]error, len(units)), nil
}

// idle is a dispatcher with no hook to deliver to.
type idle struct{}

func (idle) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// storeOf is what a store holds when the first life is killed: its
// journal and the end of the latest call it stored (pipeline.LastHeard).
type storeOf struct {
	ins     []cdr.Input
	lastEnd time.Time
	ended   map[string]time.Time // the calls it holds: their ends, by uuid
}

func (s storeOf) Journal(context.Context) ([]cdr.Input, []error, error) { return s.ins, nil, nil }

func (s storeOf) LastCallEnd(context.Context) (time.Time, error) { return s.lastEnd, nil }

func (s storeOf) EndedSince(_ context.Context, t time.Time) (map[string]bool, error) {
	out := map[string]bool{}
	for id, end := range s.ended {
		if !end.Before(t) {
			out[id] = true
		}
	}
	return out, nil
}

// compare counts the calls whose webhooks equal the uninterrupted run's,
// and lists the others. A call whose bodies differ only in fields its
// record names estimated, each of them in allowed (what the books of its
// shape cannot say), counts as the same: used names those fields.
func compare(want, got webhooks, allowed []string) (same int, used map[string]int, differ []string) {
	used = map[string]int{}
	for id, w := range want {
		ok, est := alike(w, got[id], allowed)
		if !ok {
			differ = append(differ, id)
			continue
		}
		same++
		for _, f := range est {
			used[f]++
		}
	}
	for id := range got {
		if _, ok := want[id]; !ok {
			differ = append(differ, id)
		}
	}
	slices.Sort(differ)
	return same, used, differ
}

// alike reports whether got tells a call as want does, but for fields got
// names estimated that allowed lists; est names those that differ.
func alike(want, got []hook, allowed []string) (ok bool, est []string) {
	if len(want) != len(got) {
		return false, nil
	}
	for i := range want {
		if want[i].body == got[i].body {
			continue
		}
		for _, f := range fieldDiffs(want[i].body, got[i].body) {
			name := estimateOf(f)
			if name == "talk_duration" && slices.Contains(got[i].estimated, "answer_time") {
				name = "answer_time" // it runs from the answer
			}
			if name == "" || !slices.Contains(got[i].estimated, name) || !slices.Contains(allowed, name) {
				return false, nil
			}
			if !slices.Contains(est, name) {
				est = append(est, name)
			}
		}
	}
	return true, est
}

// estimateOf is the estimated field (Record.Estimated's names) a webhook
// field states, "" for a field no estimate covers.
func estimateOf(path string) string {
	path = strings.TrimPrefix(path, "cdr.")
	if i := strings.Index(path, "]."); strings.HasPrefix(path, "callflow[") && i > 0 {
		path = path[i+2:]
	}
	switch path {
	case "hangup_cause", "answer_time", "hangup_time", "talk_duration":
		return path
	case "sip_hangup_disposition", "hangup_detail":
		return "sip_hangup_disposition"
	case "call_record", "call_record_file":
		return "call_record"
	case "timestamp": // a call_hangup's is its hangup time
		return "hangup_time"
	}
	return ""
}

// fieldDiffs are the paths of the fields that differ between two bodies.
func fieldDiffs(a, b string) []string {
	fa, fb := flatten(a), flatten(b)
	var out []string
	for k, v := range fa {
		if w, ok := fb[k]; !ok || w != v {
			out = append(out, k)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// explain names the first event of call id that differs between want and
// got, and the fields that differ in it, for a failing test's log.
func explain(want, got webhooks, id string) string {
	w, g := want[id], got[id]
	for i := range max(len(w), len(g)) {
		var a, b hook
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a.body == b.body {
			continue
		}
		fa, fb := flatten(a.body), flatten(b.body)
		var diffs []string
		for _, k := range fieldDiffs(a.body, b.body) {
			diffs = append(diffs, fmt.Sprintf("%s: %s != %s", k, or(fa[k], "none"), or(fb[k], "none")))
		}
		return fmt.Sprintf("event %d of %d/%d (%s/%s, estimated %v): %s", i+1, len(w), len(g), fa["event_type"], fb["event_type"],
			b.estimated, strings.Join(diffs, "; "))
	}
	return ""
}

func or(s, dflt string) string {
	if s == "" {
		return dflt
	}
	return s
}

// flatten is a JSON body as path -> value.
func flatten(body string) map[string]string {
	out := map[string]string{}
	if body == "" {
		return out
	}
	var v any
	if json.Unmarshal([]byte(body), &v) != nil {
		out[""] = body
		return out
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				walk(strings.TrimPrefix(path+"."+k, "."), e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		default:
			b, _ := json.Marshal(x)
			out[path] = string(b)
		}
	}
	walk("", v)
	return out
}
