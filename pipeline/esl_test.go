package pipeline_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
)

// fsHook is one webhook as a receiver got it.
type fsHook struct {
	Type, Call string
	Body       map[string]any
}

// fsReceiver records the webhooks a hook receives.
type fsReceiver struct {
	mu   sync.Mutex
	got  []fsHook
	seen chan struct{}
}

func (r *fsReceiver) wait(t *testing.T, n int) []fsHook {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		r.mu.Lock()
		if len(r.got) >= n {
			got := append([]fsHook(nil), r.got...)
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

// startFreeSWITCH runs the real pipeline with the FreeSWITCH source
// against a fake event socket, and one hook for 908508850000 subscribed to
// every event.
func startFreeSWITCH(t *testing.T, fs *esltest.Server) *fsReceiver {
	t.Helper()
	return startFreeSWITCHWith(t, fs, nil, nil)
}

// startFreeSWITCHWith is startFreeSWITCH with the PBX's books bk (nil:
// none), wired as kanca run wires them (Pipeline.Gap on every reconcile),
// and the source's config changed by configure.
func startFreeSWITCHWith(t *testing.T, fs *esltest.Server, bk books.Books, configure func(*esl.Config)) *fsReceiver {
	t.Helper()
	recv := &fsReceiver{seen: make(chan struct{}, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(req.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		recv.mu.Lock()
		recv.got = append(recv.got, fsHook{Type: req.Header.Get("X-Kanca-Event"), Call: req.Header.Get("X-Kanca-Call"), Body: body})
		recv.mu.Unlock()
		recv.seen <- struct{}{}
	}))
	t.Cleanup(srv.Close)

	store, err := hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	_, err = store.AddHook(context.Background(), hooks.Hook{Number: "908508850000", URL: srv.URL, Events: hooks.AllEvents(),
		Format: "json", Enabled: true})
	require.NoError(t, err)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline.Pipeline{
		Tracker:    cdr.NewTracker(cdr.DefaultConfig()),
		Outbox:     hooks.NewOutbox(store, hooks.OutboxOptions{}),
		Dispatcher: hooks.NewDispatcher(store, hooks.DispatchOptions{Logger: log, PollInterval: 20 * time.Millisecond}),
		Logger:     log,
	}
	cfg := esl.Config{Addr: fs.Addr, Password: "ClueCon", Logger: log,
		Backoff: esl.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}}
	if bk != nil {
		p.Books = bk
		cfg.OnReconcile = func(g follow.Gap) { p.Gap(ctx, g) }
	}
	if configure != nil {
		configure(&cfg)
	}
	src, err := esl.New(cfg)
	require.NoError(t, err)
	p.Source = src
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})
	return recv
}

func loadFreeSWITCH(t *testing.T, trace string) [][]byte {
	events, err := esltest.LoadNDJSON(filepath.Join("..", "testdata", "esl", trace, "events.ndjson"))
	require.NoError(t, err)
	return events
}

func types(hs []fsHook) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Type)
	}
	return out
}

// A recorded FreeSWITCH call goes through the live event socket source and
// the whole pipeline: the same webhooks as the replay goldens.
func TestFreeSWITCHTraceThroughPipeline(t *testing.T) {
	fs := esltest.NewServer(esltest.Options{})
	t.Cleanup(fs.Close)
	fs.Play(loadFreeSWITCH(t, "f03_inbound_noanswer_timeout_missed")...)
	recv := startFreeSWITCH(t, fs)
	got := recv.wait(t, 4)
	assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup", "missing_call"}, types(got))
	rec := got[2].Body["cdr"].(map[string]any)
	assert.Nil(t, rec["reconciled"])
	assert.Nil(t, rec["answer_time"])
}

// The event socket drops mid-call; while kanca is away both legs hang up.
// kanca reconnects, sees the channels gone, and still sends call_hangup,
// marked as reconciled.
func TestFreeSWITCHDropMidCallIsReconciled(t *testing.T) {
	events := loadFreeSWITCH(t, "f01_inbound_answered_caller_hangup")
	bridged := lastWith(t, events, "Event-Name", "CHANNEL_BRIDGE")
	fs := esltest.NewServer(esltest.Options{})
	t.Cleanup(fs.Close)
	fs.DropAfter(bridged+1, len(events)-bridged-1)
	fs.Play(events...)

	recv := startFreeSWITCH(t, fs)
	got := recv.wait(t, 3)
	require.Equal(t, []string{"call_init", "call_init_extension", "call_hangup"}, types(got))
	hangup := got[2].Body
	assert.Equal(t, got[0].Call, got[2].Call)
	rec := hangup["cdr"].(map[string]any)
	assert.Equal(t, true, rec["reconciled"])
	assert.NotNil(t, rec["answer_time"], "the answer was seen before the drop")
	assert.Equal(t, float64(908508850000), hangup["callee"])
	assert.GreaterOrEqual(t, fs.Connections(), 2, "kanca reconnected")
	assert.GreaterOrEqual(t, fs.Listings(), 2, "and listed the channels to reconcile")
}

// The event socket drops mid-call and both legs hang up just before
// kanca is back: FreeSWITCH's list, behind its events, still shows them,
// and only the list taken again a second later finds them gone. With the
// PBX's books (which have no file of them yet) the channels a reconnect
// reports gone are held until the books are read; those the second list
// reports are ended then, not held for a reconnect that may never come.
func TestFreeSWITCHLaggingListWithBooksEndsTheCall(t *testing.T) {
	events := loadFreeSWITCH(t, "f01_inbound_answered_caller_hangup")
	bridged := lastWith(t, events, "Event-Name", "CHANNEL_BRIDGE")
	const lag = 300 * time.Millisecond
	fs := esltest.NewServer(esltest.Options{ListLag: lag})
	t.Cleanup(fs.Close)
	fs.Play(events[:bridged+1]...)
	bk, err := books.Open(t.TempDir())
	require.NoError(t, err)
	recv := startFreeSWITCHWith(t, fs, bk, func(c *esl.Config) { c.Relist = 2 * lag })
	recv.wait(t, 2)
	time.Sleep(2 * lag) // the table shows the call up
	fs.Hang(0)
	at := fs.Pos()
	fs.Play(events[bridged+1:]...)
	fs.DropAfter(at, len(events)-bridged-1)
	fs.Resume()

	got := recv.wait(t, 3)
	require.Equal(t, []string{"call_init", "call_init_extension", "call_hangup"}, types(got))
	rec := got[2].Body["cdr"].(map[string]any)
	assert.Equal(t, true, rec["reconciled"])
}
