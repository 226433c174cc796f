package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/httpapi"
	"github.com/kanca/kanca/pipeline"
	"github.com/kanca/kanca/status"
	"github.com/kanca/kanca/version"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// waitFor waits for cond; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

type live struct {
	asterisk *aritest.Server
	src      *ari.Source
	disp     *hooks.Dispatcher
	store    *hooks.Store
	api      *httptest.Server
	hook     hooks.Hook

	mu     sync.Mutex
	bodies []map[string]any
}

// start runs the real pipeline on s01 (one answered inbound call, three
// webhooks) with the API in front of it.
func start(t *testing.T) *live {
	t.Helper()
	l := &live{}
	frames, err := aritest.LoadNDJSON(filepath.Join("..", "testdata", "ari", "s01-answered-caller-hangs-up", "events.ndjson"))
	require.NoError(t, err)
	l.asterisk = aritest.NewServer(aritest.Options{})
	t.Cleanup(l.asterisk.Close)
	l.asterisk.Play(frames...)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		l.mu.Lock()
		l.bodies = append(l.bodies, body)
		l.mu.Unlock()
	}))
	t.Cleanup(recv.Close)

	l.store, err = hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	t.Cleanup(func() { l.store.Close() })
	l.hook, err = l.store.AddHook(context.Background(), hooks.Hook{Number: "908508850000", URL: recv.URL,
		User: "crm", Password: "s3cret-password", Secret: "s3cret-signing"})
	require.NoError(t, err)

	l.src, err = ari.New(ari.Config{URL: l.asterisk.URL, User: "kanca", Password: "kanca", Logger: quiet,
		Backoff: ari.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}})
	require.NoError(t, err)
	attempts := httpapi.NewAttempts()
	l.disp = hooks.NewDispatcher(l.store, hooks.DispatchOptions{Logger: quiet, PollInterval: 20 * time.Millisecond,
		OnAttempt: attempts.Observe})
	p := &pipeline.Pipeline{
		Source:     l.src,
		Tracker:    cdr.NewTracker(cdr.DefaultConfig()),
		Outbox:     hooks.NewOutbox(l.store, hooks.OutboxOptions{}),
		Dispatcher: l.disp,
		Logger:     quiet,
	}
	l.api = httptest.NewServer(httpapi.Handler(httpapi.Config{Store: l.store, ARI: l.src, Pipeline: p,
		Dispatcher: l.disp, Attempts: attempts, Logger: quiet}))
	t.Cleanup(l.api.Close)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "three webhooks delivered", func() bool { return l.disp.Stats().Delivered == 3 })
	return l
}

func (l *live) hangup(t *testing.T) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.bodies {
		if b["event_type"] == "call_hangup" {
			return b
		}
	}
	t.Fatal("no call_hangup received")
	return nil
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, url+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	return fams
}

// value returns the sample of family name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	require.True(t, ok, "metric %s missing", name)
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("metric %s has no sample with labels %v", name, want)
	return 0
}

func TestMetricsAfterACall(t *testing.T) {
	l := start(t)
	fams := scrape(t, l.api.URL)
	hook := map[string]string{"hook": "1"}
	ariStats := l.src.Stats()

	assert.Equal(t, float64(ariStats.ByType["ChannelCreated"]), value(t, fams, "kanca_ari_frames_total", map[string]string{"type": "ChannelCreated"}))
	assert.Positive(t, value(t, fams, "kanca_ari_frames_total", map[string]string{"type": "ChannelDestroyed"}))
	assert.Equal(t, 1.0, value(t, fams, "kanca_ari_connected", nil))
	assert.Equal(t, 0.0, value(t, fams, "kanca_ari_reconnects_total", nil))
	assert.Equal(t, 0.0, value(t, fams, "kanca_live_calls", nil))
	assert.Positive(t, value(t, fams, "kanca_pbx_events_total", nil))
	assert.Equal(t, 3.0, value(t, fams, "kanca_call_events_total", nil))
	assert.Equal(t, 3.0, value(t, fams, "kanca_outbox_deliveries", map[string]string{"state": "delivered"}))
	assert.Equal(t, 0.0, value(t, fams, "kanca_outbox_deliveries", map[string]string{"state": "pending"}))
	assert.Equal(t, 3.0, value(t, fams, "kanca_delivery_attempts_total", map[string]string{"hook": "1", "outcome": "delivered"}))
	assert.Equal(t, 0.0, value(t, fams, "kanca_delivery_attempts_total", map[string]string{"hook": "1", "outcome": "dead"}))
	assert.Equal(t, 3.0, value(t, fams, "kanca_delivery_latency_seconds", hook), "one latency sample per attempt")
	assert.Equal(t, 0.0, value(t, fams, "kanca_deliveries_in_flight", nil))
	assert.Contains(t, fams, "go_goroutines")
}

func TestHealthFollowsARIAndDatabase(t *testing.T) {
	l := start(t)
	code, body := get(t, l.api.URL+"/healthz")
	assert.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"status":"ok"}`, body)

	l.asterisk.Close()
	waitFor(t, "the ARI connection to drop", func() bool { return !l.src.Stats().Connected })
	code, body = get(t, l.api.URL+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	var got map[string]string
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Equal(t, "unavailable", got["status"])
	assert.Contains(t, got["reason"], "not connected to Asterisk")
	assert.Equal(t, 0.0, value(t, scrape(t, l.api.URL), "kanca_ari_connected", nil))

	// A database that does not answer, with ARI fine.
	store, err := hooks.Open(filepath.Join(t.TempDir(), "gone.db"))
	require.NoError(t, err)
	require.NoError(t, store.Close())
	api := httptest.NewServer(httpapi.Handler(httpapi.Config{Store: store, ARI: connected{}, Logger: quiet}))
	defer api.Close()
	code, body = get(t, api.URL+"/healthz")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	assert.Contains(t, got["reason"], "database")
}

type connected struct{}

func (connected) Stats() ari.Stats { return ari.Stats{Link: follow.Link{Connected: true}} }

func TestCallsAndDeliveries(t *testing.T) {
	l := start(t)
	sent := l.hangup(t)
	uuid := sent["uuid"].(string)

	code, body := get(t, l.api.URL+"/calls/"+uuid)
	require.Equal(t, http.StatusOK, code, body)
	var stored map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &stored))
	assert.Equal(t, "call_hangup", stored["event_type"])
	assert.Equal(t, uuid, stored["uuid"])
	assert.Equal(t, sent["hangup_cause"], stored["hangup_cause"])
	assert.Equal(t, sent["cdr"], stored["cdr"])

	code, body = get(t, l.api.URL+"/calls/no-such-call")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, `"error"`)

	code, body = get(t, l.api.URL+"/deliveries?call="+uuid+"&hook=1&state=delivered&limit=10")
	require.Equal(t, http.StatusOK, code, body)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list, 3)
	assert.Equal(t, "call_hangup", list[0]["event"], "newest first")
	for _, d := range list {
		assert.Equal(t, uuid, d["call"])
		assert.NotContains(t, d, "body")
	}
	code, body = get(t, l.api.URL+"/deliveries?state=dead")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `[]`, body)
	for _, bad := range []string{"state=lost", "hook=x", "limit=0", "limit=100000"} {
		code, body = get(t, l.api.URL+"/deliveries?"+bad)
		assert.Equal(t, http.StatusBadRequest, code, bad)
		assert.Contains(t, body, `"error"`, bad)
	}

	id := list[0]["id"].(string)
	code, body = get(t, l.api.URL+"/deliveries/"+id)
	require.Equal(t, http.StatusOK, code, body)
	var one struct {
		ID         string           `json:"id"`
		State      string           `json:"state"`
		Body       string           `json:"body"`
		AttemptLog []map[string]any `json:"attempt_log"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &one))
	assert.Equal(t, id, one.ID)
	assert.Equal(t, "delivered", one.State)
	assert.Contains(t, one.Body, uuid)
	require.Len(t, one.AttemptLog, 1)
	assert.EqualValues(t, 200, one.AttemptLog[0]["status"])
	assert.NotContains(t, body, "s3cret")
	assert.NotContains(t, body, "crm")

	code, _ = get(t, l.api.URL+"/deliveries/no-such-id")
	assert.Equal(t, http.StatusNotFound, code)
	resp, err := http.Post(l.api.URL+"/deliveries/"+id, "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "the API is read-only")
}

func TestStatusAnswersWhatAnAdminAsksFirst(t *testing.T) {
	l := start(t)
	code, body := get(t, l.api.URL+"/status")
	require.Equal(t, http.StatusOK, code, body)
	var rep status.Report
	require.NoError(t, json.Unmarshal([]byte(body), &rep))
	assert.Equal(t, "daemon", rep.From)
	assert.Equal(t, l.store.Path(), rep.Database)
	require.NotNil(t, rep.PBX)
	assert.Equal(t, "asterisk", rep.PBX.Kind)
	assert.True(t, rep.PBX.Connected)
	require.NotNil(t, rep.PBX.Since)
	assert.WithinDuration(t, time.Now(), *rep.PBX.Since, time.Minute)
	require.NotNil(t, rep.LiveCalls)
	assert.Zero(t, *rep.LiveCalls)
	require.Len(t, rep.Hooks, 1)
	h := rep.Hooks[0]
	assert.Equal(t, l.hook.ID, h.ID)
	assert.Zero(t, h.Queued+h.Held+h.Dead)
	require.NotNil(t, h.LastSuccess, "the call's three deliveries succeeded")
	assert.Nil(t, h.LastFailure)
	assert.NotContains(t, body, "s3cret")
	assert.Empty(t, rep.Warnings)
	assert.Equal(t, 1.0, value(t, scrape(t, l.api.URL), "kanca_build_info", map[string]string{"version": version.Get().Version}))
}

// A healthy kanca with no enabled hook says so in /healthz: three call
// events went nowhere while it answered a bare "ok".
func TestHealthWarnsWithoutAnEnabledHook(t *testing.T) {
	api := bareAPI(t, connected{})
	code, body := get(t, api.URL+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"status":"ok","warnings":["`+status.NoEnabledHook+`"]}`, body)
}

// Failed connection attempts count as reconnects: the counter stayed 0
// through seven refused connections.
func TestReconnectsCountFailedAttempts(t *testing.T) {
	api := bareAPI(t, failing{})
	assert.Equal(t, 7.0, value(t, scrape(t, api.URL), "kanca_ari_reconnects_total", nil))
}

type failing struct{}

func (failing) Stats() ari.Stats {
	return ari.Stats{Link: follow.Link{Failures: 7, LastError: "connection refused"}}
}

// A listener (kanca run --nats) keeps no hooks: that is no warning, and
// its status says where the hooks and deliveries are.
func TestListenerDoesNotWarnOfHooksTheClusterHolds(t *testing.T) {
	api := bareAPI(t, connected{}, func(c *httpapi.Config) { c.Cluster = true })
	code, body := get(t, api.URL+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"status":"ok"}`, body)
	_, body = get(t, api.URL+"/status")
	var rep status.Report
	require.NoError(t, json.Unmarshal([]byte(body), &rep))
	assert.Equal(t, []string{status.InCluster}, rep.Warnings)
}

// bareAPI serves an empty database with ARI reporting what src says.
func bareAPI(t *testing.T, src interface{ Stats() ari.Stats }, opts ...func(*httpapi.Config)) *httptest.Server {
	t.Helper()
	store, err := hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	cfg := httpapi.Config{Store: store, ARI: src, Logger: quiet}
	for _, o := range opts {
		o(&cfg)
	}
	api := httptest.NewServer(httpapi.Handler(cfg))
	t.Cleanup(api.Close)
	return api
}
