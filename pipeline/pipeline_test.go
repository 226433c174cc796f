package pipeline_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
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

// receiver records the webhooks a hook receives.
type receiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []delivery
	seen chan struct{}
}

type delivery struct {
	Type, Call, ID string
	Seq            int
	Body           map[string]any
	User, Password string
}

// deliveryTypes are the event types of ds, in their order.
func deliveryTypes(ds []delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Type)
	}
	return out
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{seen: make(chan struct{}, 1000)}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		var body map[string]any
		if err := json.Unmarshal(b, &body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		seq, _ := strconv.Atoi(req.Header.Get("X-Kanca-Sequence"))
		user, pass, _ := req.BasicAuth()
		r.mu.Lock()
		r.got = append(r.got, delivery{Type: req.Header.Get("X-Kanca-Event"), Call: req.Header.Get("X-Kanca-Call"),
			ID: req.Header.Get("X-Kanca-Delivery"), Seq: seq, Body: body, User: user, Password: pass})
		r.mu.Unlock()
		r.seen <- struct{}{}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) wait(t *testing.T, n int) []delivery {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		if len(r.got) >= n {
			got := append([]delivery(nil), r.got...)
			r.mu.Unlock()
			return got
		}
		r.mu.Unlock()
		select {
		case <-r.seen:
		case <-timeout:
			t.Fatalf("only %d of %d webhooks arrived", len(r.got), n)
		}
	}
}

type fixture struct {
	asterisk *aritest.Server
	recv     *receiver
	stop     func() error
	store    *hooks.Store
}

// start runs the real pipeline against a fake Asterisk playing frames and
// one hook for 908508850000 subscribed to every event.
func start(t *testing.T, frames [][]byte, configure func(*aritest.Server)) *fixture {
	t.Helper()
	return startWithBooks(t, frames, configure, nil)
}

// startWithBooks is start with the PBX's books (--pbx-records) wired as
// kanca run wires them: every reconciliation closes its gap from them.
func startWithBooks(t *testing.T, frames [][]byte, configure func(*aritest.Server), bk books.Books) *fixture {
	t.Helper()
	recv := newReceiver(t)
	f := startWith(t, frames, configure, bk, hooks.Hook{Number: "908508850000", URL: recv.URL, Events: hooks.AllEvents(),
		Format: "json", User: "crm", Password: "s3cret", Enabled: true})
	f.recv = recv
	return f
}

// startWith runs the real pipeline against a fake Asterisk playing frames,
// with the PBX's books bk (nil: none) and the hooks hs.
func startWith(t *testing.T, frames [][]byte, configure func(*aritest.Server), bk books.Books, hs ...hooks.Hook) *fixture {
	t.Helper()
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	if configure != nil {
		configure(ast)
	}
	ast.Play(frames...)

	store, err := hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	for _, h := range hs {
		_, err = store.AddHook(context.Background(), h)
		require.NoError(t, err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline.Pipeline{
		Tracker:    cdr.NewTracker(cdr.DefaultConfig()),
		Outbox:     hooks.NewOutbox(store, hooks.OutboxOptions{}),
		Dispatcher: hooks.NewDispatcher(store, hooks.DispatchOptions{Logger: log, PollInterval: 20 * time.Millisecond}),
		Logger:     log,
		Books:      bk,
	}
	cfg := ari.Config{URL: ast.URL, User: "kanca", Password: "kanca", Logger: log,
		Backoff: ari.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}}
	if bk != nil {
		cfg.OnReconcile = func(g follow.Gap) { p.Gap(ctx, g) }
	}
	src, err := ari.New(cfg)
	require.NoError(t, err)
	p.Source = src
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	f := &fixture{asterisk: ast, store: store}
	var once sync.Once
	var runErr error
	f.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { f.stop() })
	return f
}

// lastWith returns the index of the last recorded frame or event whose
// top-level field has value: where a test cuts a recording.
func lastWith(t *testing.T, frames [][]byte, field, value string) int {
	t.Helper()
	last := -1
	for i, fr := range frames {
		var f map[string]any
		require.NoError(t, json.Unmarshal(fr, &f))
		if f[field] == value {
			last = i
		}
	}
	require.Positive(t, last, "no %s %s in the recording", field, value)
	return last
}

func load(t *testing.T, scenario string) [][]byte {
	frames, err := aritest.LoadNDJSON(filepath.Join("..", "testdata", "ari", scenario, "events.ndjson"))
	require.NoError(t, err)
	return frames
}

// The five concurrent calls of s11 go through the whole pipeline: every
// webhook arrives, with Basic auth, and each call's events in order.
func TestTraceThroughPipeline(t *testing.T) {
	f := start(t, load(t, "s11-five-concurrent"), nil)
	got := f.recv.wait(t, 15)
	byCall := map[string][]delivery{}
	ids := map[string]bool{}
	for _, d := range got {
		byCall[d.Call] = append(byCall[d.Call], d)
		assert.Equal(t, "crm", d.User)
		assert.Equal(t, "s3cret", d.Password)
		assert.Equal(t, d.Type, d.Body["event_type"])
		assert.Equal(t, d.Call, d.Body["uuid"])
		assert.False(t, ids[d.ID], "delivery ids are unique")
		ids[d.ID] = true
	}
	require.Len(t, byCall, 5)
	for call, ds := range byCall {
		var types []string
		for i, d := range ds {
			assert.Equal(t, i+1, d.Seq, "call %s arrives in order", call)
			types = append(types, d.Type)
		}
		assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup"}, types)
	}
	require.NoError(t, f.stop())
}

// The ARI connection drops mid-call; while kanca is away both legs hang up.
// kanca reconnects, sees the channels gone, and still sends call_hangup,
// marked as reconciled.
func TestDropMidCallIsReconciled(t *testing.T) {
	frames := load(t, "s01-answered-caller-hangs-up")
	bridged := lastWith(t, frames, "type", "ChannelEnteredBridge")
	f := start(t, frames, func(s *aritest.Server) { s.DropAfter(bridged+1, len(frames)-bridged-1) })
	got := f.recv.wait(t, 3)
	assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup"}, []string{got[0].Type, got[1].Type, got[2].Type})
	rec := got[2].Body["cdr"].(map[string]any)
	assert.Equal(t, true, rec["reconciled"])
	assert.NotNil(t, rec["answer_time"], "the answer was seen before the drop")
	assert.GreaterOrEqual(t, f.asterisk.Connections(), 2, "kanca reconnected")
	assert.GreaterOrEqual(t, f.asterisk.Listings(), 1, "and listed the channels to reconcile")
	assert.Equal(t, map[string]any{"hangup_time": true, "talk_duration": true, "hangup_cause": true, "sip_hangup_disposition": true},
		rec["estimated"])
}

// The same drop with the PBX's books at hand: the call ends as Asterisk's
// CEL says (its true end, the caller hanging up), marked recovered, and is
// not ended a second time as reconciled.
func TestDropMidCallRecoveredFromBooks(t *testing.T) {
	frames := load(t, "s01-answered-caller-hangs-up")
	bridged := lastWith(t, frames, "type", "ChannelEnteredBridge")
	bk, err := books.Open(filepath.Join("..", "testdata", "ari", "s01-answered-caller-hangs-up", "cel.csv"))
	require.NoError(t, err)
	f := startWithBooks(t, frames, func(s *aritest.Server) { s.DropAfter(bridged+1, len(frames)-bridged-1) }, bk)
	got := f.recv.wait(t, 3)
	assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup"}, []string{got[0].Type, got[1].Type, got[2].Type})
	rec := got[2].Body["cdr"].(map[string]any)
	assert.Equal(t, true, rec["recovered"])
	assert.Nil(t, rec["reconciled"])
	// The CEL has no row for a recording: one started in the gap would
	// be unseen.
	assert.Equal(t, map[string]any{"call_record": true}, rec["estimated"])
	assert.Equal(t, "2026-11-22T12:08:14+00:00", rec["hangup_time"], "the end Asterisk wrote down, not the drop")
	assert.Equal(t, "recv_bye", rec["sip_hangup_disposition"])
	assert.Equal(t, "NORMAL_CLEARING", rec["hangup_cause"])
	assert.EqualValues(t, 3, got[2].Body["talk_duration"])
	require.NoError(t, f.stop())
	assert.Len(t, f.recv.wait(t, 3), 3, "nothing sent twice")
}
