package hooks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

// orderReceiver records, per call, the sequence numbers in arrival order.
type orderReceiver struct {
	mu    sync.Mutex
	calls map[string][]int
	ids   map[string]int
}

func (o *orderReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq, _ := strconv.Atoi(r.Header.Get("X-Kanca-Sequence"))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.calls == nil {
		o.calls, o.ids = map[string][]int{}, map[string]int{}
	}
	call := r.Header.Get("X-Kanca-Call")
	o.calls[call] = append(o.calls[call], seq)
	o.ids[r.Header.Get("X-Kanca-Delivery")]++
}

func (o *orderReceiver) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.ids)
}

// A backlog larger than the dispatcher's window is read back from the
// store as the window drains: everything is sent once, each call in order,
// whether it waited before Run started or was handed over beyond the
// window while Run was sending.
func TestBacklogBeyondTheWindowIsSentWholeAndInOrder(t *testing.T) {
	s, _ := newStore(t)
	var rc orderReceiver
	srv := httptest.NewServer(&rc)
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL, MaxInFlight: 8})
	const calls, perCall = 900, 3 // 2700 deliveries, over two windows and a half
	unitsOf := func(from, to int) []Unit {
		var us []Unit
		for seq := 1; seq <= perCall; seq++ {
			for c := from; c < to; c++ {
				us = append(us, Unit{Events: []cdr.Event{event(fmt.Sprint("call-", c), seq, cdr.CallInit)}})
			}
		}
		return us
	}
	o := NewOutbox(s, OutboxOptions{})
	_, err := o.Commit(context.Background(), unitsOf(0, calls/2)) // waiting before Run
	require.NoError(t, err)
	run(t, s, DispatchOptions{PollInterval: time.Hour})              // only a window that drains reads the store again
	_, err = o.Commit(context.Background(), unitsOf(calls/2, calls)) // handed over, most beyond the window
	require.NoError(t, err)

	waitFor(t, "every delivery", func() bool { return rc.total() == calls*perCall })
	waitFor(t, "every attempt recorded", allIn(t, s, Delivered))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for id, n := range rc.ids {
		assert.Equal(t, 1, n, "delivery %s sent once", id)
	}
	require.Len(t, rc.calls, calls)
	for call, seqs := range rc.calls {
		assert.Equal(t, []int{1, 2, 3}, seqs, "call %s in order", call)
	}
}

// The outbox hands a delivery over after committing it, so the dispatcher
// may read it from the store first, send it and finish it before the
// handoff arrives: the handoff must not send it a second time.
func TestHandoffAfterReadIsNotSentTwice(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h := addHook(t, s, Hook{URL: "http://127.0.0.1:1/"})
	s.attach(true)
	enqueue(t, s, event("A", 1, cdr.CallInit))
	l := newLoop(NewDispatcher(s, DispatchOptions{Logger: quiet}), ctx)
	// The read happens before the handoff is taken.
	fresh, _ := s.takeFresh()
	require.Len(t, fresh, 1)
	l.sync(ctx)
	hq := l.hooks[h.ID]
	require.NotNil(t, hq)
	require.Equal(t, 1, hq.size())
	cq := hq.calls["A"]
	e := cq.head()
	cq.busy, hq.sending = true, 1
	l.answered(answer{cq: cq, e: e, o: outcome{state: Delivered}})
	l.done([]*recording{{dl: e.Delivery, hook: h}})
	require.Zero(t, hq.size())

	s.handOff(fresh) // late
	l.absorb()
	assert.Zero(t, hq.size(), "a delivery already sent is not queued again")
	assert.Empty(t, l.finished, "the late handoff settles it")

	// A later delivery of the call still comes through the handoff.
	enqueue(t, s, event("A", 2, cdr.CallInitMenu))
	l.absorb()
	assert.Equal(t, 1, hq.size())
}

// Another process (kanca deliveries retry) requeues a delivery that this
// dispatcher holds, waiting for a retry far ahead: the poll picks the
// change up and sends it now.
func TestRetryFromAnotherProcessReachesTheWindow(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	var mu sync.Mutex
	fail := true
	var got int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got++
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL})
	enqueue(t, s, event("A", 1, cdr.CallInit))
	hour := RetryPolicy{Initial: time.Hour, Factor: 1, Max: time.Hour, Attempts: 5}
	run(t, s, DispatchOptions{Retry: hour, PollInterval: 20 * time.Millisecond})
	waitFor(t, "the first attempt recorded", allIn(t, s, Retrying))
	mu.Lock()
	fail = false
	mu.Unlock()

	other, err := OpenExisting(path)
	require.NoError(t, err)
	defer other.Close()
	ds := deliveries(t, other, Filter{})
	require.Len(t, ds, 1)
	require.NoError(t, other.Retry(ctx, ds[0].ID))
	waitFor(t, "delivered after the retry", allIn(t, s, Delivered))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 2, got)
}

// After an outage that left more deliveries waiting for a retry than the
// window holds, a new call's event goes out as soon as the receiver
// answers again: parked calls do not fill the window ahead of it.
func TestNewCallsFlowPastParkedRetries(t *testing.T) {
	s, _ := newStore(t)
	var mu sync.Mutex
	down := true
	var sent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		sent = append(sent, r.Header.Get("X-Kanca-Call"))
	}))
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL, MaxInFlight: 16})
	var units []Unit
	for c := range queueWindow + 200 {
		units = append(units, Unit{Events: []cdr.Event{event(fmt.Sprint("old-", c), 1, cdr.CallInit)}})
	}
	o := NewOutbox(s, OutboxOptions{})
	_, err := o.Commit(context.Background(), units)
	require.NoError(t, err)
	hour := RetryPolicy{Initial: time.Hour, Factor: 1, Max: time.Hour, Attempts: 5}
	run(t, s, DispatchOptions{Retry: hour, PollInterval: time.Hour})
	waitFor(t, "every old delivery tried once", allIn(t, s, Retrying))

	mu.Lock()
	down = false
	mu.Unlock()
	commit(t, o, event("new", 1, cdr.CallInit))
	waitFor(t, "the new call delivered", func() bool {
		return len(deliveries(t, s, Filter{CallID: "new", State: Delivered})) == 1
	})
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"new"}, sent, "the old ones wait for their retry")
}

// A retry falls due on its own timer: nothing else has to wake the
// dispatcher for it to be sent.
func TestRetryIsSentWhenDueWithoutAPoll(t *testing.T) {
	s, _ := newStore(t)
	var mu sync.Mutex
	tries := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if tries++; tries == 1 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL})
	enqueue(t, s, event("A", 1, cdr.CallInit))
	soon := RetryPolicy{Initial: 50 * time.Millisecond, Factor: 1, Max: 50 * time.Millisecond, Attempts: 3}
	run(t, s, DispatchOptions{Retry: soon, PollInterval: time.Hour})
	waitFor(t, "delivered on the second try", allIn(t, s, Delivered))
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 2, tries)
}
