// Package sourcetest holds what the tests of the PBX sources (ari, esl)
// share: loading recordings, running a source and taking its inputs,
// waiting on a fake PBX, and comparing input sequences. It imports
// testing, so only tests may import it.
package sourcetest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow/followtest"
)

// Failsafe only keeps a broken test from hanging forever; no assertion
// depends on how long anything takes.
const Failsafe = 20 * time.Second

// Recording loads the events of the one recorded scenario under dir whose
// folder starts with prefix, in the order the PBX sent them.
func Recording(t testing.TB, dir, prefix string) [][]byte {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, prefix+"*", "events.ndjson"))
	require.NoError(t, err)
	require.Len(t, matches, 1, "scenario %s", prefix)
	events, err := followtest.LoadNDJSON(matches[0])
	require.NoError(t, err)
	require.NotEmpty(t, events)
	return events
}

// Recordings loads every recorded scenario under dir, by folder name.
func Recordings(t testing.TB, dir string) map[string][][]byte {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(dir, "*", "events.ndjson"))
	require.NoError(t, err)
	require.NotEmpty(t, matches)
	out := make(map[string][][]byte, len(matches))
	for _, m := range matches {
		events, err := followtest.LoadNDJSON(m)
		require.NoError(t, err)
		out[filepath.Base(filepath.Dir(m))] = events
	}
	return out
}

// Logs collects log output written from several goroutines.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Logs) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Logs) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Logger writes everything, debug included, to b as text.
func (b *Logs) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Run is a source running until the test ends, with what it emitted.
type Run struct {
	Logs *Logs
	got  chan cdr.Input
	stop func()
}

// Start runs run (a source's Run) until the test ends; emit blocks once
// buf inputs wait untaken.
func Start(t *testing.T, logs *Logs, buf int, run func(context.Context, func(cdr.Input)) error) *Run {
	t.Helper()
	h := &Run{Logs: logs, got: make(chan cdr.Input, buf)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, func(in cdr.Input) { h.got <- in }) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(Failsafe):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(h.stop)
	return h
}

// Stop stops the source and waits for Run to return.
func (h *Run) Stop() { h.stop() }

// Take waits for the next n inputs.
func (h *Run) Take(t *testing.T, n int) []cdr.Input {
	t.Helper()
	out := make([]cdr.Input, 0, n)
	for len(out) < n {
		select {
		case in := <-h.got:
			out = append(out, in)
		case <-time.After(Failsafe):
			require.FailNow(t, "inputs missing", "got %d of %d; logs:\n%s", len(out), n, h.Logs.String())
		}
	}
	return out
}

// StopAndDrain stops the source and returns whatever it emitted that was
// not taken; Run has returned, so nothing can follow.
func (h *Run) StopAndDrain() []cdr.Input {
	h.stop()
	var rest []cdr.Input
	for {
		select {
		case in := <-h.got:
			rest = append(rest, in)
		default:
			return rest
		}
	}
}

// WaitFor blocks until cond holds on a fake PBX's state.
func WaitFor(t *testing.T, st *followtest.Stage, cond func() bool) {
	t.Helper()
	deadline := time.After(Failsafe)
	for {
		ch := st.Changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			require.FailNow(t, "condition never held")
		}
	}
}

// Eventually polls cond; for state that has no change notification.
func Eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Failsafe)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, "condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}

// PlayAfterList plays events once the fake has answered the source's nth
// channel list, so every event reaches it after the list was taken. The
// source may still be reading the answer: see PlayWhenUp.
func PlayAfterList(t *testing.T, st *followtest.Stage, n int, events ...[]byte) {
	t.Helper()
	WaitFor(t, st, func() bool { return st.Listings() >= n })
	st.Play(events...)
}

// PlayWhenUp is PlayAfterList that also waits until up says the source is
// connected, its reconciliation done. Events that reach a source still
// reading its list are handled all the same, but a drop among them then
// ends a connection that never counted as up: the next one is the first
// again, with no "reconnected" and no reconnect counted. On a loaded
// machine the list's answer can still be on its way when the events are.
func PlayWhenUp(t *testing.T, st *followtest.Stage, n int, up func() bool, events ...[]byte) {
	t.Helper()
	WaitFor(t, st, func() bool { return st.Listings() >= n })
	Eventually(t, up)
	st.Play(events...)
}

// Latest is the latest time of ins.
func Latest(ins []cdr.Input) time.Time {
	var t time.Time
	for _, in := range ins {
		if in.Time.After(t) {
			t = in.Time
		}
	}
	return t
}

// CreatedIDs is the channels ins creates, in order.
func CreatedIDs(ins []cdr.Input) []string {
	var ids []string
	for _, in := range ins {
		if in.Kind == cdr.KindCreated {
			ids = append(ids, in.Channel.ID)
		}
	}
	return ids
}

// CountKind is how many of ins are of kind k.
func CountKind(ins []cdr.Input, k cdr.Kind) int {
	n := 0
	for _, in := range ins {
		if in.Kind == k {
			n++
		}
	}
	return n
}

// WithoutCreated is ins without its KindCreated inputs.
func WithoutCreated(ins []cdr.Input) []cdr.Input {
	var out []cdr.Input
	for _, in := range ins {
		if in.Kind != cdr.KindCreated {
			out = append(out, in)
		}
	}
	return out
}

// SameInputs compares input sequences and reports the first difference
// only: whole sequences are too long to read in a failure.
func SameInputs(t *testing.T, want, got []cdr.Input) {
	t.Helper()
	for i := range min(len(want), len(got)) {
		if !assert.ObjectsAreEqual(want[i], got[i]) {
			t.Errorf("input %d differs:\nwant %s\n got %s", i, show(want[i]), show(got[i]))
			return
		}
	}
	if len(want) != len(got) {
		t.Errorf("%d inputs, want %d", len(got), len(want))
	}
}

// Resumed returns ins with the first input of each channel in ids marked
// Resumed, as a source marks a listed channel's first event after a gap.
func Resumed(ins []cdr.Input, ids ...string) []cdr.Input {
	out := slices.Clone(ins)
	for _, id := range ids {
		if i := slices.IndexFunc(out, func(in cdr.Input) bool { return in.Channel.ID == id }); i >= 0 {
			out[i].Resumed = true
		}
	}
	return out
}

func show(in cdr.Input) string {
	other := ""
	if in.Other != nil {
		other = fmt.Sprintf(" other=%+v", *in.Other)
	}
	return fmt.Sprintf("%s %s %+v%s var=%s=%s dial=%s/%s bridge=%s cause=%d/%d/%s soft=%v adopted=%v resumed=%v",
		in.Kind, in.Time.Format(time.RFC3339Nano), in.Channel, other, in.Var, in.Value,
		in.DialStatus, in.DialString, in.Bridge, in.Cause, in.TechCause, in.CauseName, in.Soft, in.Adopted, in.Resumed)
}
