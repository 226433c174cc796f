package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
)

// session is one kanca run: a pipeline on a store that outlives it.
type session struct {
	p      *pipeline.Pipeline
	cancel context.CancelFunc
	done   chan error
}

func startSession(t *testing.T, ast *aritest.Server, store *hooks.Store, configure ...func(*pipeline.Pipeline)) *session {
	t.Helper()
	var w io.Writer = io.Discard
	if testing.Verbose() {
		w = os.Stderr
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := ari.New(ari.Config{URL: ast.URL, User: "kanca", Password: "kanca", Logger: log,
		Backoff: ari.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}})
	require.NoError(t, err)
	p := &pipeline.Pipeline{
		Source:     src,
		Tracker:    cdr.NewTracker(cdr.DefaultConfig()),
		Outbox:     hooks.NewOutbox(store, hooks.OutboxOptions{}),
		Dispatcher: hooks.NewDispatcher(store, hooks.DispatchOptions{Logger: log, PollInterval: 20 * time.Millisecond}),
		Journal:    store,
		Logger:     log,
	}
	for _, c := range configure {
		c(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{p: p, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- p.Run(ctx) }()
	return s
}

// stop stops the session and waits until Asterisk has seen it go, so that
// frames played next wait for the next session rather than being written
// to the closed socket.
func (s *session) stop(t *testing.T, ast *aritest.Server) {
	t.Helper()
	s.cancel()
	require.NoError(t, <-s.done)
	deadline := time.Now().Add(10 * time.Second)
	for ast.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("Asterisk still sees the stopped session connected")
		}
		time.Sleep(time.Millisecond)
	}
}

// waitInputs waits until the session's tracker has taken n inputs and
// committed what they made.
func (s *session) waitInputs(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for st := s.p.Stats(); st.Inputs < n || st.Queued > 0; st = s.p.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline took %d of %d inputs, %d not committed", st.Inputs, n, st.Queued)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitListed waits until the fake Asterisk answered a channel list after
// the before-th.
func waitListed(t *testing.T, ast *aritest.Server, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ast.Listings() <= before {
		if time.Now().After(deadline) {
			t.Fatal("the session never listed the channels")
		}
		time.Sleep(time.Millisecond)
	}
}

// waitDelivered waits until the store has nothing left to send.
func waitDelivered(t *testing.T, store *hooks.Store) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		depth, err := store.Depth(context.Background())
		require.NoError(t, err)
		if depth[hooks.Pending]+depth[hooks.Retrying] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries still waiting: %v", depth)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func decodable(t *testing.T, frames [][]byte) int64 {
	var n int64
	for _, fr := range frames {
		_, ok, err := ari.Decode(fr)
		require.NoError(t, err)
		if ok {
			n++
		}
	}
	return n
}

// bodies is what a receiver got, per call in sequence order, with the
// delivery ids apart.
func bodies(t *testing.T, got []delivery) (map[string][]string, map[string]string) {
	sort.SliceStable(got, func(i, j int) bool { return got[i].Seq < got[j].Seq })
	out := map[string][]string{}
	ids := map[string]string{}
	for _, d := range got {
		b, err := json.Marshal(d.Body)
		require.NoError(t, err)
		key := fmt.Sprintf("%s/%d", d.Call, d.Seq)
		if id, dup := ids[key]; dup {
			require.Equal(t, id, d.ID, "a repeated event carries its delivery id")
			continue
		}
		ids[key] = d.ID
		out[d.Call] = append(out[d.Call], string(b))
	}
	return out, ids
}

// newStore returns a store with a hook on url for every PBX number the
// recording's calls have.
func newStore(t *testing.T, url string, frames [][]byte) *hooks.Store {
	store, err := hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	tr := cdr.NewTracker(cdr.DefaultConfig())
	numbers := map[string]bool{}
	for _, fr := range frames {
		in, ok, err := ari.Decode(fr)
		require.NoError(t, err)
		if !ok {
			continue
		}
		for _, ev := range tr.Handle(in) {
			if !numbers[ev.Number] {
				numbers[ev.Number] = true
				_, err = store.AddHook(context.Background(), hooks.Hook{Number: ev.Number, URL: url, Events: hooks.AllEvents(),
					Format: "json", Enabled: true})
				require.NoError(t, err)
			}
		}
	}
	require.NotEmpty(t, numbers)
	return store
}

// kanca is stopped at many points of a recording and started again, while
// Asterisk holds the rest of the recording for the next connection: every
// call resumes where it was (from the journal) and the receiver gets
// exactly the webhooks of a run that never stopped, not reconciled
// guesses, and not one event twice.
func TestRestartMidCallResumesTheCall(t *testing.T) {
	for _, scenario := range []string{"s01-answered-caller-hangs-up", "s06-ivr-menu-dtmf-to-extension", "s11-five-concurrent"} {
		t.Run(scenario, func(t *testing.T) {
			frames := load(t, scenario)

			// The run that never stops.
			ast := aritest.NewServer(aritest.Options{})
			t.Cleanup(ast.Close)
			ast.Play(frames...)
			recv := newReceiver(t)
			store := newStore(t, recv.URL, frames)
			s := startSession(t, ast, store)
			s.waitInputs(t, decodable(t, frames))
			waitDelivered(t, store)
			s.stop(t, ast)
			n, err := store.Deliveries(context.Background(), hooks.Filter{})
			require.NoError(t, err)
			want, _ := bodies(t, recv.wait(t, len(n)))
			require.NotEmpty(t, want)

			for _, cut := range []int{len(frames) / 5, len(frames) / 3, len(frames) / 2, 2 * len(frames) / 3, len(frames) - 3} {
				t.Run(fmt.Sprintf("stop after frame %d of %d", cut, len(frames)), func(t *testing.T) {
					ast := aritest.NewServer(aritest.Options{})
					t.Cleanup(ast.Close)
					recv := newReceiver(t)
					store := newStore(t, recv.URL, frames)

					ast.Play(frames[:cut]...)
					first := startSession(t, ast, store)
					first.waitInputs(t, decodable(t, frames[:cut]))
					first.stop(t, ast)

					// Played once the second session has listed the channels:
					// a channel that ends between the subscription and the
					// list is reported gone (reconciled), and this test is
					// about the journal, not that window.
					listed := ast.Listings()
					second := startSession(t, ast, store)
					waitListed(t, ast, listed)
					ast.Play(frames[cut:]...)
					second.waitInputs(t, decodable(t, frames[cut:]))
					// The inputs counted may include what the reconcile
					// made (a held change told at the settle): the frames'
					// own are in only once every webhook came.
					recv.wait(t, len(n))
					waitDelivered(t, store)
					second.stop(t, ast)

					all, err := store.Deliveries(context.Background(), hooks.Filter{})
					require.NoError(t, err)
					got, _ := bodies(t, recv.wait(t, len(all)))
					assert.Equal(t, want, got)
					journal, bad, err := store.Journal(context.Background())
					require.NoError(t, err)
					assert.Empty(t, bad)
					assert.Empty(t, journal, "every call ended: nothing left to resume")
				})
			}
		})
	}
}

// kanca stops mid-call and both legs hang up before it starts again: the
// restored call is ended by the first reconciliation, not left for the
// maximum call duration.
func TestCallEndedWhileStoppedIsReconciledOnStart(t *testing.T) {
	frames := load(t, "s01-answered-caller-hangs-up")
	bridged := lastWith(t, frames, "type", "ChannelEnteredBridge")
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	recv := newReceiver(t)
	store := newStore(t, recv.URL, frames)

	ast.Play(frames[:bridged+1]...)
	first := startSession(t, ast, store)
	first.waitInputs(t, decodable(t, frames[:bridged+1]))
	first.stop(t, ast)
	// Asterisk goes on without kanca: the call ends unseen.
	ast.Play(frames[bridged+1:]...)
	require.Equal(t, len(frames)-bridged-1, ast.LiveThrough(len(frames)))

	second := startSession(t, ast, store)
	t.Cleanup(func() { second.cancel() })
	got := recv.wait(t, 3)
	assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup"}, deliveryTypes(got))
	rec := got[2].Body["cdr"].(map[string]any)
	assert.Equal(t, true, rec["reconciled"])
	assert.NotNil(t, rec["answer_time"], "the answer, seen by the first run, survived the restart")
	second.stop(t, ast)
}

// kanca stops with no call live; a call rings and is refused while it is
// away; with the PBX's books it starts again and sends that call's
// webhooks, late and marked recovered. The gap began when the latest
// call it stored ended.
func TestCallWhileStoppedRecoveredFromBooks(t *testing.T) {
	before, during := load(t, "s01-answered-caller-hangs-up"), load(t, "s05-busy")
	ast, recv, store := stoppedAfter(t, before, during)

	// Asterisk goes on without kanca: a whole call comes and goes.
	ast.Play(during...)
	require.Equal(t, len(during), ast.LiveThrough(len(during)))

	bk, err := books.Open(filepath.Join("..", "testdata", "ari", "s05-busy", "cel.csv"))
	require.NoError(t, err)
	second := startSession(t, ast, store, withBooks(t, ast, bk))
	t.Cleanup(func() { second.cancel() })
	got := recv.wait(t, 7)[3:]
	// The uuid a run that never stopped gives the call.
	want := cdr.CallUUID("", "")
	for _, fr := range during {
		if in, ok, _ := ari.Decode(fr); ok && in.Kind == cdr.KindCreated {
			want = cdr.CallUUID(in.Server, in.Channel.ID)
			break
		}
	}
	for _, d := range got {
		assert.Equal(t, want, d.Call)
	}
	assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup", "missing_call"}, deliveryTypes(got))
	rec := got[2].Body["cdr"].(map[string]any)
	assert.Equal(t, true, rec["recovered"])
	assert.Equal(t, "USER_BUSY", rec["hangup_cause"])
	assert.Equal(t, "send_refuse", rec["sip_hangup_disposition"])
	second.stop(t, ast)
}

// A call that began after the last input of the calls still live at the
// stop and ended before it was told whole before the stop: the books read
// at the restart hold it (the gap they are read over begins where the
// store says kanca last heard: that call's end, not the live calls' last
// input), and it is not told again.
func TestCallToldBeforeTheStopIsNotToldAgainFromBooks(t *testing.T) {
	live, whole := load(t, "s01-answered-caller-hangs-up"), load(t, "s05-busy")
	// The caller of s01 is up and talking at its half; s05 came after.
	half := len(live) / 2
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	recv := newReceiver(t)
	store := newStore(t, recv.URL, append(append([][]byte{}, live...), whole...))

	ast.Play(live[:half]...)
	ast.Play(whole...)
	first := startSession(t, ast, store)
	first.waitInputs(t, decodable(t, live[:half])+decodable(t, whole))
	waitDelivered(t, store)
	first.stop(t, ast)
	told := len(recv.snapshot())
	require.Equal(t, 4+2, told, "s05 whole (call_init, call_init_extension, call_hangup, missing_call), s01's first two")

	bk, err := books.Open(filepath.Join("..", "testdata", "ari", "s05-busy", "cel.csv"))
	require.NoError(t, err)
	second := startSession(t, ast, store, withBooks(t, ast, bk))
	t.Cleanup(func() { second.cancel() })
	ast.Play(live[half:]...)
	got := recv.wait(t, told+1)
	waitDelivered(t, store)
	second.stop(t, ast)
	got = recv.snapshot()
	assert.Equal(t, []string{"call_hangup"}, deliveryTypes(got[told:]), "after the restart, only s01's end")
}

// A call that began while kanca was stopped, whose callee hung up in the
// moment before kanca came back: the books, read then, do not have the
// callee's end yet (Asterisk writes the row as it happens), and the list
// no longer shows the callee. The books' leg the list does not show is
// gone, as a remembered channel would be: the caller's end, live, ends
// the call.
func TestBooksLegTheListNoLongerShowsEnds(t *testing.T) {
	before, during := load(t, "s01-answered-caller-hangs-up"), load(t, "s02-answered-callee-hangs-up")
	calleeEnd := slices.IndexFunc(during, func(fr []byte) bool {
		in, ok, _ := ari.Decode(fr)
		return ok && in.Kind == cdr.KindDestroyed
	})
	require.Positive(t, calleeEnd)
	ast, recv, store := stoppedAfter(t, before, during)
	told := len(recv.snapshot())

	// Asterisk goes on to the callee's end; its rows are written as far
	// as the callee's leaving the bridge.
	ast.Play(during[:calleeEnd+1]...)
	require.Equal(t, calleeEnd+1, ast.LiveThrough(calleeEnd+1))
	cel, err := os.ReadFile(filepath.Join("..", "testdata", "ari", "s02-answered-callee-hangs-up", "cel.csv"))
	require.NoError(t, err)
	var rows []string
	for _, row := range strings.SplitAfter(string(cel), "\n") {
		if strings.HasPrefix(row, `"HANGUP"`) {
			break
		}
		rows = append(rows, row)
	}
	path := filepath.Join(t.TempDir(), "cel.csv")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(rows, "")), 0o644))
	bk, err := books.Open(path)
	require.NoError(t, err)

	second := startSession(t, ast, store, withBooks(t, ast, bk))
	t.Cleanup(func() { second.cancel() })
	// The caller's end comes live.
	ast.Play(during[calleeEnd+1:]...)
	got := recv.wait(t, told+3)[told:]
	assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup"}, deliveryTypes(got))
	rec := got[2].Body["cdr"].(map[string]any)
	assert.Equal(t, true, rec["recovered"])
	assert.NotNil(t, rec["answer_time"], "answered, as the books say")
	second.stop(t, ast)
}

// withBooks has a session read bk after every (re)connect, as kanca run
// wires --pbx-records: the source's reconcile calls Pipeline.Gap.
func withBooks(t *testing.T, ast *aritest.Server, bk books.Books) func(*pipeline.Pipeline) {
	return func(p *pipeline.Pipeline) {
		p.Books = bk
		src, err := ari.New(ari.Config{URL: ast.URL, User: "kanca", Password: "kanca", Logger: p.Logger,
			Backoff:     ari.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond},
			OnReconcile: func(g follow.Gap) { p.Gap(context.Background(), g) }})
		require.NoError(t, err)
		p.Source = src
		p.PBXID = func(ctx context.Context) (string, error) {
			info, err := src.Client().Info(ctx)
			return info.EntityID, err
		}
	}
}

// stoppedAfter runs kanca through the calls before, delivered (s01's
// three webhooks), and stops it with no call live; the store has hooks
// for the numbers of before and of during, the calls to come.
func stoppedAfter(t *testing.T, before, during [][]byte) (*aritest.Server, *receiver, *hooks.Store) {
	t.Helper()
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	recv := newReceiver(t)
	store := newStore(t, recv.URL, append(append([][]byte{}, before...), during...))
	ast.Play(before...)
	first := startSession(t, ast, store)
	first.waitInputs(t, decodable(t, before))
	waitDelivered(t, store)
	first.stop(t, ast)
	require.Len(t, recv.wait(t, 3), 3)
	return ast, recv, store
}
