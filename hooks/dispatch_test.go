package hooks

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/version"
)

// fixed is a clock that never moves: one attempt per delivery, and every
// computed next attempt can be checked exactly.
var fixed = time.Date(2025, 7, 1, 12, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return fixed }

// oneShot retries after exactly a second, which a fixed clock never reaches.
var oneShot = RetryPolicy{Initial: time.Second, Factor: 1, Max: time.Second, Attempts: 10}

func TestOutcomeOfEachResponse(t *testing.T) {
	status := func(code int, header ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.WriteHeader(code)
			fmt.Fprintf(w, "answer %d", code)
		}
	}
	closed := func() string { // a port nobody listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr + "/"
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("redirect followed to %s", r.URL)
	}))
	defer target.Close()

	cases := []struct {
		name     string
		handler  http.HandlerFunc
		tls      bool
		insecure bool
		url      string // instead of a server
		timeout  time.Duration
		state    State
		next     time.Duration // after fixed, for Retrying
		errText  string
		// noResponse: the failure is the transport's, logged as an error
		noResponse bool
	}{
		{name: "200", handler: status(200), state: Delivered},
		{name: "201", handler: status(201), state: Delivered},
		{name: "204", handler: status(204), state: Delivered},
		{name: "301 is a failure, not followed", handler: status(301, "Location", target.URL), state: Retrying, next: time.Second, errText: "HTTP 301"},
		{name: "400", handler: status(400), state: Retrying, next: time.Second, errText: "HTTP 400"},
		{name: "404", handler: status(404), state: Retrying, next: time.Second},
		{name: "408", handler: status(408), state: Retrying, next: time.Second},
		{name: "410 disables the hook", handler: status(410), state: Dead, errText: "410 Gone"},
		{name: "429 with Retry-After seconds", handler: status(429, "Retry-After", "120"), state: Retrying, next: 120 * time.Second},
		{name: "500", handler: status(500), state: Retrying, next: time.Second, errText: "HTTP 500"},
		{name: "503 with Retry-After date", handler: status(503, "Retry-After", fixed.Add(5*time.Minute).Format(http.TimeFormat)), state: Retrying, next: 5 * time.Minute},
		{name: "connection refused", url: closed(), state: Retrying, next: time.Second, errText: "refused", noResponse: true},
		{name: "timeout", handler: hang, timeout: 100 * time.Millisecond,
			state: Retrying, next: time.Second, errText: "deadline exceeded", noResponse: true},
		{name: "TLS unknown authority", handler: status(200), tls: true, state: Retrying, next: time.Second, errText: "certificate", noResponse: true},
		{name: "TLS check skipped by the hook", handler: status(200), tls: true, insecure: true, state: Delivered},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := newStore(t)
			url := c.url
			if c.handler != nil {
				srv := httptest.NewUnstartedServer(c.handler)
				if c.tls {
					srv.StartTLS()
				} else {
					srv.Start()
				}
				defer srv.Close()
				url = srv.URL + "/hook"
			}
			h := addHook(t, s, Hook{URL: url, Timeout: c.timeout, InsecureSkipVerify: c.insecure, MaxInFlight: 1})
			// A second call queued behind: only a 410 may touch it.
			o := NewOutbox(s, OutboxOptions{Now: fixedNow})
			commit(t, o, event("call-1", 1, cdr.CallInit))
			commit(t, o, event("call-2", 1, cdr.CallInit))
			first := deliveries(t, s, Filter{CallID: "call-1"})[0]

			d, stop := run(t, s, DispatchOptions{Retry: oneShot, Now: fixedNow})
			waitFor(t, "the first attempt", func() bool {
				got, _, err := s.Delivery(ctx, first.ID)
				return err == nil && got.Attempts > 0
			})
			require.NoError(t, stop())

			got, atts, err := s.Delivery(ctx, first.ID)
			require.NoError(t, err)
			assert.Equal(t, c.state, got.State)
			require.Len(t, atts, 1)
			if c.errText != "" {
				assert.Contains(t, got.LastError, c.errText)
			}
			if c.state == Retrying {
				assert.Equal(t, fixed.Add(c.next), got.NextAttempt.UTC())
			}
			if !c.noResponse {
				assert.Equal(t, atts[0].Status, got.LastStatus)
				assert.NotZero(t, atts[0].Status)
				if got.LastStatus != http.StatusNoContent {
					assert.True(t, strings.HasPrefix(atts[0].Response, "answer "), atts[0].Response)
				}
			} else {
				assert.Zero(t, atts[0].Status)
				assert.NotEmpty(t, atts[0].Error)
			}
			hook, err := s.GetHook(ctx, h.ID)
			require.NoError(t, err)
			other := deliveries(t, s, Filter{CallID: "call-2"})[0]
			if c.name == "410 disables the hook" {
				assert.False(t, hook.Enabled)
				assert.Contains(t, hook.DisabledReason, "410 Gone")
				assert.Equal(t, Dead, other.State, "the hook's queue is given up")
				assert.Contains(t, other.LastError, "410 Gone")
				waitFor(t, "the 410 counted", func() bool { return d.Stats().Gone == 1 })
			} else {
				assert.True(t, hook.Enabled)
				assert.NotEqual(t, Dead, other.State)
			}
		})
	}
}

// hang answers only when the client gives up. It reads the body first:
// the server notices a vanished client only once the body is consumed.
func hang(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

// receiver records what a hook's server was sent.
type receiver struct {
	mu   sync.Mutex
	reqs []*http.Request
	body map[*http.Request][]byte
}

func (rc *receiver) add(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.body == nil {
		rc.body = map[*http.Request][]byte{}
	}
	rc.reqs = append(rc.reqs, r)
	rc.body[r] = b
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

func (rc *receiver) headers(name string) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []string
	for _, r := range rc.reqs {
		out = append(out, r.Header.Get(name))
	}
	return out
}

func TestRequestCarriesHeadersAuthAndSignature(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var rc receiver
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.add(r)
		w.Write([]byte(strings.Repeat("x", 5000))) // more than the attempt log keeps
	}))
	defer srv.Close()
	key := []byte("a key of at least twenty-four bytes")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	addHook(t, s, Hook{URL: srv.URL + "/bf", User: "bob", Password: "hunter2", Secret: secret,
		Events: []string{"incoming_call_extension"}})
	enqueueAt(t, s, fixed, event("call-9", 3, cdr.CallInitExtension))
	dl := deliveries(t, s, Filter{})[0]

	run(t, s, DispatchOptions{Now: fixedNow})
	waitFor(t, "delivery", allIn(t, s, Delivered))

	require.Equal(t, 1, rc.count())
	r := rc.reqs[0]
	body := rc.body[r]
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, "/bf", r.URL.Path)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, version.UserAgent(), r.Header.Get("User-Agent"))
	assert.Equal(t, "incoming_call_extension", r.Header.Get("X-Kanca-Event"))
	assert.Equal(t, dl.ID, r.Header.Get("X-Kanca-Delivery"))
	assert.Equal(t, "3", r.Header.Get("X-Kanca-Sequence"))
	assert.Equal(t, "call-9", r.Header.Get("X-Kanca-Call"))
	user, pass, ok := r.BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, "bob", user)
	assert.Equal(t, "hunter2", pass)
	assert.Equal(t, dl.Body, body)
	assert.Contains(t, string(body), `"event_type":"incoming_call_extension"`)

	// Verify as a Standard Webhooks receiver would.
	assert.Equal(t, dl.ID, r.Header.Get("webhook-id"))
	ts := r.Header.Get("webhook-timestamp")
	assert.Equal(t, strconv.FormatInt(fixed.Unix(), 10), ts)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(dl.ID + "." + ts + "."))
	mac.Write(body)
	assert.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), r.Header.Get("webhook-signature"))

	_, atts, err := s.Delivery(ctx, dl.ID)
	require.NoError(t, err)
	require.Len(t, atts, 1)
	assert.Equal(t, 200, atts[0].Status)
	assert.Len(t, atts[0].Response, 1024)
}

func TestNoAuthNoSignatureWhenUnset(t *testing.T) {
	s, _ := newStore(t)
	var rc receiver
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rc.add(r) }))
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL})
	enqueue(t, s, event("c", 1, cdr.CallInit))
	run(t, s, DispatchOptions{})
	waitFor(t, "delivery", allIn(t, s, Delivered))
	assert.Empty(t, rc.reqs[0].Header.Get("Authorization"))
	assert.Empty(t, rc.reqs[0].Header.Get("webhook-signature"))
}

// fast retries within milliseconds, so retry tests wait on outcomes only.
var fast = RetryPolicy{Initial: 5 * time.Millisecond, Factor: 1, Max: 5 * time.Millisecond, Attempts: 1000}

func TestCallOrderKeptWhileRetrying(t *testing.T) {
	s, _ := newStore(t)
	var mu sync.Mutex
	var got []string // call/seq in arrival order, successes only
	failures := 0
	bDone := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get("X-Kanca-Call") + "/" + r.Header.Get("X-Kanca-Sequence")
		// A/1 fails until call B is through: B must not wait for A. It
		// fails at least once, for B may be through before A/1 first
		// arrives on a loaded machine.
		if id == "A/1" && (!bDone || failures == 0) {
			failures++
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if id == "B/2" && failures == 0 {
			// A/1 is sent at once too, but on a busy machine it can
			// arrive after B's events: B ends only once A/1 has failed.
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		got = append(got, id)
		if id == "B/2" {
			bDone = true
		}
	}))
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL})
	enqueue(t, s, event("A", 1, cdr.CallInit), event("A", 2, cdr.CallInitMenu), event("A", 3, cdr.CallInitExtension))
	enqueue(t, s, event("B", 1, cdr.CallInit), event("B", 2, cdr.CallInitExtension))

	run(t, s, DispatchOptions{Retry: fast, PollInterval: 10 * time.Millisecond})
	waitFor(t, "all delivered", allIn(t, s, Delivered))

	mu.Lock()
	defer mu.Unlock()
	assert.Positive(t, failures)
	pos := map[string]int{}
	for i, id := range got {
		pos[id] = i
	}
	require.Len(t, got, 5, "each event delivered once: %v", got)
	assert.Less(t, pos["A/1"], pos["A/2"])
	assert.Less(t, pos["A/2"], pos["A/3"])
	assert.Less(t, pos["B/1"], pos["B/2"])
	assert.Less(t, pos["B/2"], pos["A/1"], "B went through while A/1 was failing")
}

func TestSlowHookDoesNotDelayOthers(t *testing.T) {
	s, _ := newStore(t)
	release := make(chan struct{})
	var slow, quick receiver
	slowSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slow.add(r)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slowSrv.Close()
	quickSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { quick.add(r) }))
	defer quickSrv.Close()
	const maxInFlight = 2
	addHook(t, s, Hook{URL: slowSrv.URL, Timeout: time.Minute, MaxInFlight: maxInFlight})
	quickHook := addHook(t, s, Hook{URL: quickSrv.URL})
	const calls = 10
	for i := range calls {
		enqueue(t, s, event(fmt.Sprintf("call-%d", i), 1, cdr.CallInit))
	}

	run(t, s, DispatchOptions{})
	waitFor(t, "the quick hook's deliveries", func() bool {
		return len(deliveries(t, s, Filter{HookID: quickHook.ID, State: Delivered})) == calls
	})
	assert.Equal(t, calls, quick.count())
	assert.LessOrEqual(t, slow.count(), maxInFlight, "the slow hook's workers are bounded")
	select {
	case <-release:
		t.Fatal("released early")
	default:
	}
	close(release)
	waitFor(t, "the slow hook's deliveries", allIn(t, s, Delivered))
	assert.Equal(t, calls, slow.count())
}

func TestRestartResumesQueuedWork(t *testing.T) {
	s, path := newStore(t)
	var mu sync.Mutex
	phase := 1
	accepted := 0
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("X-Kanca-Delivery")]++
		cut := phase == 1 && accepted == 2
		if !cut {
			accepted++
		}
		mu.Unlock()
		if cut { // the third request of the first run is cut off by shutdown
			hang(w, r)
		}
	}))
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL, Timeout: time.Minute, MaxInFlight: 1})
	for i := range 5 {
		enqueue(t, s, event("call", i+1, cdr.CallInit))
	}
	var ids []string
	for _, d := range deliveries(t, s, Filter{}) {
		ids = append(ids, d.ID)
	}

	_, stop := run(t, s, DispatchOptions{ShutdownGrace: 50 * time.Millisecond})
	waitFor(t, "a request in flight after two accepted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range seen {
			n += c
		}
		return n == 3
	})
	require.NoError(t, stop(), "Run returns once the grace is over")
	require.Len(t, deliveries(t, s, Filter{State: Delivered}), 2)
	require.NoError(t, s.Close())

	mu.Lock()
	phase = 2
	mu.Unlock()
	s2, err := OpenExisting(path)
	require.NoError(t, err)
	defer s2.Close()
	run(t, s2, DispatchOptions{})
	waitFor(t, "everything delivered after the restart", allIn(t, s2, Delivered))

	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		assert.GreaterOrEqual(t, seen[id], 1, id)
	}
	assert.Len(t, seen, len(ids), "the same delivery ids, no new ones")
	twice := 0
	for _, c := range seen {
		if c == 2 {
			twice++
		}
	}
	assert.Equal(t, 1, twice, "the request cut off by shutdown is sent again")
}

func TestDeadAfterLastAttemptThenReplayed(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var mu sync.Mutex
	up := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			w.WriteHeader(http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	h := addHook(t, s, Hook{URL: srv.URL})
	enqueue(t, s, event("A", 1, cdr.CallInit), event("A", 2, cdr.CallInitMenu))
	enqueue(t, s, event("B", 1, cdr.CallInit))

	three := RetryPolicy{Initial: time.Millisecond, Factor: 1, Max: time.Millisecond, Attempts: 3}
	d, _ := run(t, s, DispatchOptions{Retry: three, PollInterval: 10 * time.Millisecond})
	waitFor(t, "all dead", allIn(t, s, Dead))
	all := deliveries(t, s, Filter{})
	require.Len(t, all, 3, "a dead delivery no longer holds back its call")
	for _, dl := range all {
		_, atts, err := s.Delivery(ctx, dl.ID)
		require.NoError(t, err)
		assert.Len(t, atts, 3)
		assert.Contains(t, dl.LastError, "gave up after 3 attempts: HTTP 502")
	}
	// Counted once the record is committed, just after the store says so.
	waitFor(t, "the dead counted", func() bool { return d.Stats().Dead == 3 })
	depth, err := s.Depth(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[State]int{Pending: 0, Retrying: 0, Delivered: 0, Dead: 3, Held: 0}, depth)

	mu.Lock()
	up = true
	mu.Unlock()
	require.NoError(t, s.Retry(ctx, all[0].ID))
	waitFor(t, "the replayed one", func() bool {
		dl, _, _ := s.Delivery(ctx, all[0].ID)
		return dl.State == Delivered
	})
	n, err := s.RetryDead(ctx, h.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	waitFor(t, "the rest", allIn(t, s, Delivered))

	assert.True(t, isNotFound(s.Retry(ctx, "no-such-id")))
	_, err = s.RetryDead(ctx, 999)
	assert.True(t, isNotFound(err))
}

func TestDisabledHookHoldsItsQueue(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var rc receiver
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rc.add(r) }))
	defer srv.Close()
	h := addHook(t, s, Hook{URL: srv.URL})
	enqueue(t, s, event("A", 1, cdr.CallInit))
	require.NoError(t, s.SetEnabled(ctx, h.ID, false))
	// The events of a disabled hook are held, not dropped (they were,
	// and a maintenance window lost its calls).
	enqueue(t, s, event("A", 2, cdr.CallInitMenu))
	enqueue(t, s, event("C", 1, cdr.CallInit), event("C", 2, cdr.CallInitMenu))
	other := addHook(t, s, Hook{URL: srv.URL})
	enqueue(t, s, event("B", 1, cdr.CallInit))

	run(t, s, DispatchOptions{PollInterval: 10 * time.Millisecond})
	waitFor(t, "the enabled hook's delivery", func() bool {
		return len(deliveries(t, s, Filter{HookID: other.ID, State: Delivered})) == 1
	})
	assert.Len(t, deliveries(t, s, Filter{HookID: h.ID, State: Pending}), 1, "queued before the disable: waits")
	assert.Len(t, deliveries(t, s, Filter{HookID: h.ID, State: Held}), 4, "A2, B1, C1, C2")
	held, err := s.HeldByHook(ctx)
	require.NoError(t, err)
	assert.Equal(t, map[int64]int{h.ID: 4}, held)
	assert.Equal(t, 1, rc.count())

	n, err := s.Enable(ctx, h.ID, false)
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	waitFor(t, "delivery once enabled", allIn(t, s, Delivered))
	require.Equal(t, 6, rc.count())
	// Per call in order: each call's events reach the receiver by seq.
	last := map[string]int{}
	calls, seqs, ids := rc.headers("X-Kanca-Call"), rc.headers("X-Kanca-Sequence"), rc.headers("X-Kanca-Delivery")
	for i, call := range calls {
		d, _, err := s.Delivery(ctx, ids[i])
		require.NoError(t, err)
		if d.HookID != h.ID {
			continue
		}
		seq, err := strconv.Atoi(seqs[i])
		require.NoError(t, err)
		assert.Greater(t, seq, last[call], "call %s out of order", call)
		last[call] = seq
	}
	assert.Equal(t, map[string]int{"A": 2, "B": 1, "C": 2}, last)
	held, err = s.HeldByHook(ctx)
	require.NoError(t, err)
	assert.Empty(t, held)
}

func TestEnableDiscardingHeld(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h := addHook(t, s, Hook{URL: "http://127.0.0.1:1/"})
	require.NoError(t, s.SetEnabled(ctx, h.ID, false))
	enqueue(t, s, event("A", 1, cdr.CallInit), event("A", 2, cdr.CallInitMenu))
	n, err := s.Enable(ctx, h.ID, true)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Empty(t, deliveries(t, s, Filter{}))
	got, err := s.GetHook(ctx, h.ID)
	require.NoError(t, err)
	assert.True(t, got.Enabled)
	_, err = s.Enable(ctx, 99, true)
	assert.True(t, isNotFound(err))
}

func TestDeadAndHeldExpire(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h := addHook(t, s, Hook{URL: "http://127.0.0.1:1/"})
	old := fixed.Add(-40 * 24 * time.Hour)
	enqueueAt(t, s, old, event("dead", 1, cdr.CallInit))
	_, err := s.db.ExecContext(ctx, "UPDATE outbox SET state = 'dead', updated_at = ?", ms(old))
	require.NoError(t, err)
	require.NoError(t, s.SetEnabled(ctx, h.ID, false))
	enqueueAt(t, s, old, event("held", 1, cdr.CallInit))
	enqueueAt(t, s, fixed.Add(-time.Hour), event("young", 1, cdr.CallInit))

	for _, c := range []struct {
		retention time.Duration
		left      []string
	}{
		{-1, []string{"dead", "held", "young"}}, // forever
		{0, []string{"young"}},                  // the default, 30 days
	} {
		d := NewDispatcher(s, DispatchOptions{Now: fixedNow, Logger: quiet, DeadRetention: c.retention})
		d.prune(ctx)
		var left []string
		for _, dl := range deliveries(t, s, Filter{}) {
			left = append(left, dl.CallID)
		}
		assert.ElementsMatch(t, c.left, left, "retention %s", c.retention)
	}
}

func TestTestSendsOnceAndStoresNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	var rc receiver
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.add(r)
		w.WriteHeader(http.StatusAccepted)
		w.Write([]byte("thanks"))
	}))
	defer srv.Close()
	h := addHook(t, s, Hook{URL: srv.URL, Format: "form", Events: []string{"call_hangup"}})
	d := NewDispatcher(s, DispatchOptions{Logger: quiet})
	res, err := d.Test(ctx, h, SampleEvent(cdr.CallHangup, h.Number, fixed), Encoding{Location: time.UTC})
	require.NoError(t, err)
	assert.Equal(t, http.StatusAccepted, res.Status)
	assert.Equal(t, "thanks", res.Response)
	assert.True(t, res.OK())
	require.Equal(t, 1, rc.count())
	body := string(rc.body[rc.reqs[0]])
	assert.Contains(t, body, "event_type=call_hangup")
	assert.Contains(t, body, "2025-07-01T12%3A00%3A00%2B00%3A00", "hangup time in the given location")
	assert.Empty(t, deliveries(t, s, Filter{}))
}

func TestPruneDropsOldAttempts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL})
	enqueueAt(t, s, fixed, event("A", 1, cdr.CallInit))
	_, stop := run(t, s, DispatchOptions{Now: fixedNow})
	waitFor(t, "delivery", allIn(t, s, Delivered))
	require.NoError(t, stop())
	id := deliveries(t, s, Filter{})[0].ID

	later := func() time.Time { return fixed.Add(31 * 24 * time.Hour) }
	_, stop = run(t, s, DispatchOptions{Now: later}) // prunes on start
	waitFor(t, "pruned", func() bool {
		_, _, err := s.Delivery(ctx, id)
		return isNotFound(err)
	})
	require.NoError(t, stop())
	var n int
	require.NoError(t, s.db.QueryRow("SELECT count(*) FROM attempts").Scan(&n))
	assert.Zero(t, n)
}

// The records of ended calls (GET /calls/{uuid}, cdr_url) are kept as long
// as attempts are, so that a store beside a busy PBX does not grow without
// bound; the call that ended last stays, whatever its age, as the last
// moment kanca heard.
func TestPruneDropsTheRecordsOfOldCallsButTheLast(t *testing.T) {
	ctx := context.Background()
	ended := func(s *Store, id string, at time.Time) {
		ev := SampleEvent(cdr.CallHangup, pbx, at)
		ev.CallID = id
		enqueue(t, s, ev)
	}
	stored := func(s *Store) []string {
		var ids []string
		rows, err := s.db.Query("SELECT uuid FROM calls")
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			ids = append(ids, id)
		}
		require.NoError(t, rows.Err())
		return ids
	}
	for _, c := range []struct {
		name  string
		calls map[string]time.Duration // ended this long before now
		left  []string
	}{
		{"some young", map[string]time.Duration{"old": 40 * 24 * time.Hour, "older": 41 * 24 * time.Hour, "young": time.Hour}, []string{"young"}},
		{"all old", map[string]time.Duration{"old": 40 * 24 * time.Hour, "older": 41 * 24 * time.Hour}, []string{"old"}},
		{"a day short of the retention", map[string]time.Duration{"old": 29 * 24 * time.Hour, "young": time.Hour}, []string{"old", "young"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := newStore(t)
			for id, ago := range c.calls {
				ended(s, id, fixed.Add(-ago))
			}
			last, err := s.LastCallEnd(ctx)
			require.NoError(t, err)
			NewDispatcher(s, DispatchOptions{Now: fixedNow, Logger: quiet}).prune(ctx)
			assert.ElementsMatch(t, c.left, stored(s))
			after, err := s.LastCallEnd(ctx)
			require.NoError(t, err)
			assert.Equal(t, last, after, "the last call's end stays")
		})
	}
}

// Pruning, and the reads after a gap, find ended calls by when they ended
// through an index, not by reading every record kept.
func TestEndedCallsAreFoundByAnIndex(t *testing.T) {
	s, _ := newStore(t)
	for _, q := range []string{
		"SELECT uuid FROM calls WHERE hangup_time >= 0",               // EndedSince
		"SELECT MAX(hangup_time) FROM calls",                          // LastCallEnd
		"DELETE FROM calls WHERE hangup_time < 0 AND hangup_time < 1", // PruneCalls
	} {
		rows, err := s.db.Query("EXPLAIN QUERY PLAN " + q)
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Err())
		rows.Close()
		assert.Contains(t, strings.Join(plan, "; "), "calls_ended", "%s: %s", q, plan)
	}
}

// Prunes delete in batches (each its own transaction, so that outbox
// commits never wait behind a month of rows), and go on until every old
// row is gone.
func TestPruneDeletesMoreThanABatch(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	old, young := ms(fixed.Add(-40*24*time.Hour)), ms(fixed.Add(-time.Hour))
	tx, err := s.db.Begin()
	require.NoError(t, err)
	n := 2*pruneBatch + 3
	for i := range n + 1 {
		at := old
		if i == n {
			at = young
		}
		_, err := tx.Exec(`INSERT INTO calls (uuid, number, direction, caller, callee, call_time, hangup_time,
			hangup_cause, hangup_json, updated_at) VALUES (?, '', '', '', '', ?, ?, '', '{}', ?)`, fmt.Sprint("call-", i), at, at, at)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	attempts, calls, expired, err := s.prune(ctx, fixed.Add(-DefaultRetention), fixed.Add(-DefaultDeadRetention))
	require.NoError(t, err)
	assert.Equal(t, [3]int64{0, int64(n), 0}, [3]int64{attempts, calls, expired})
	var left int
	require.NoError(t, s.db.QueryRow("SELECT count(*) FROM calls").Scan(&left))
	assert.Equal(t, 1, left)
}
