package books_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
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

func (w webhooks) add(t *testing.T, evs []cdr.Event) {
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
		require.NoError(t, err)
		w[ev.CallID] = append(w[ev.CallID], hook{body: string(body), estimated: est})
	}
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
		w.add(t, tr.Handle(in))
	}
	return w
}

// interrupted is a run killed after the last input stamped at or before
// kill and started again at back, with what a restart does in between:
// the tracker restored from its journal, the channels it followed and the
// PBX no longer lists reported gone, the gap told from the books when b is
// set (gone held until then, as the pipeline holds them), and a listed
// channel it did not know adopted at its next event.
func interrupted(t *testing.T, ins []cdr.Input, b books.Books, kill, back time.Time) webhooks {
	t.Helper()
	w := webhooks{}
	k1 := slices.IndexFunc(ins, func(in cdr.Input) bool { return in.Time.After(kill) })
	k2 := slices.IndexFunc(ins, func(in cdr.Input) bool { return in.Time.After(back) })
	if k2 < 0 {
		k2 = len(ins)
	}
	require.True(t, k1 >= 0 && k2 >= k1, "kill and back fall inside the recording")

	// The first life, with its journal.
	tr := cdr.NewTracker(cdr.DefaultConfig())
	var journal []cdr.Input
	finished := map[string]bool{} // a channel id never comes back
	var since time.Time
	for _, in := range ins[:k1] {
		if tr.Needs(in) {
			journal = append(journal, in)
		}
		w.add(t, tr.Handle(in))
		for _, id := range tr.Finished(nil) {
			finished[id] = true
		}
		if in.Time.After(since) {
			since = in.Time
		}
	}
	journal = slices.DeleteFunc(journal, func(j cdr.Input) bool { return finished[j.Channel.ID] })
	if since.IsZero() {
		// Killed before the recording's first input: kanca last heard the
		// PBX at the kill (the pipeline keeps that time in its store).
		since = kill
	}
	// What the PBX lists at back, and what kanca remembered at kill.
	listed := alive(ins[:k2])
	tr = cdr.NewTracker(cdr.DefaultConfig())
	tr.Restore(journal)
	known := map[string]bool{}
	var gone []cdr.Input
	for _, in := range journal {
		if tr.Follows(in.Channel.ID) && !known[in.Channel.ID] {
			known[in.Channel.ID] = true
			if !listed[in.Channel.ID] {
				gone = append(gone, cdr.Input{Kind: cdr.KindGone, Time: since, Server: in.Server, Channel: in.Channel})
			}
		}
	}
	server := ins[0].Server
	if b != nil {
		rec, err := books.Recover(context.Background(), b, since, back, tr.Follows)
		require.NoError(t, err)
		for _, in := range rec {
			in.Server = server
			w.add(t, tr.Handle(in))
		}
	}
	for _, in := range gone {
		w.add(t, tr.Handle(in))
	}
	// Listed channels are held until their next event: one kanca did not
	// know is adopted, one whose state changed in the gap (answered) is
	// updated, with the listed snapshot, as follow/ does.
	adopt, update := map[string]bool{}, map[string]cdr.Channel{}
	then, now := states(ins[:k1]), states(ins[:k2])
	for id := range listed {
		switch {
		case !known[id]:
			adopt[id] = true
		case then[id].State != now[id].State:
			update[id] = now[id]
		}
	}
	for _, in := range ins[k2:] {
		if adopt[in.Channel.ID] {
			delete(adopt, in.Channel.ID)
			w.add(t, tr.Handle(cdr.Input{Kind: cdr.KindCreated, Time: back, Server: in.Server, Channel: in.Channel}))
		}
		if ch, ok := update[in.Channel.ID]; ok {
			delete(update, in.Channel.ID)
			w.add(t, tr.Handle(cdr.Input{Kind: cdr.KindState, Time: back, Server: in.Server, Channel: ch, Adopted: true}))
		}
		w.add(t, tr.Handle(in))
	}
	return w
}

// states is each channel's latest snapshot with a state.
func states(ins []cdr.Input) map[string]cdr.Channel {
	m := map[string]cdr.Channel{}
	for _, in := range ins {
		if in.Channel.State != "" {
			m[in.Channel.ID] = in.Channel
		}
	}
	return m
}

// alive lists the channels created and not destroyed by the inputs.
func alive(ins []cdr.Input) map[string]bool {
	m := map[string]bool{}
	for _, in := range ins {
		switch in.Kind {
		case cdr.KindCreated:
			m[in.Channel.ID] = true
		case cdr.KindDestroyed:
			delete(m, in.Channel.ID)
		}
	}
	return m
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
