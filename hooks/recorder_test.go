package hooks

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

// TestRecorderGroupsAttemptsHandedOverApart: attempts that finish a few
// milliseconds apart, as a call's deliveries do at 50 calls/s, are
// recorded in one transaction per linger they span, not one each; every
// delivery is then delivered in the store. (With the 5 ms linger of
// before, these twelve took five transactions.)
func TestRecorderGroupsAttemptsHandedOverApart(t *testing.T) {
	s, _ := newStore(t)
	h := addHook(t, s, Hook{URL: "http://127.0.0.1:1/hook"})
	const n = 12
	for i := range n {
		enqueue(t, s, event(fmt.Sprintf("call-%d", i), 1, cdr.CallInit))
	}
	ds, err := s.Deliveries(context.Background(), Filter{HookID: h.ID, State: Pending})
	require.NoError(t, err)
	require.Len(t, ds, n)

	groups := make(chan []*recording, n)
	rc := newRecorder(s, func(recs []*recording) { groups <- recs })
	done := make(chan struct{})
	go func() { rc.run(context.Background()); close(done) }()
	start := time.Now()
	for _, d := range ds {
		rc.add(&recording{dl: d, hook: h, r: AttemptResult{Status: http.StatusOK}, o: outcome{state: Delivered}, now: time.Now()})
		time.Sleep(2 * time.Millisecond)
	}
	// A group waits at least 40 ms for more (a loaded machine stretches
	// the sleeps: a group per 40 ms they spanned is the most there may be).
	most := int(time.Since(start)/(40*time.Millisecond)) + 1
	close(rc.in)
	<-done
	close(groups)

	var sizes []int
	for g := range groups {
		sizes = append(sizes, len(g))
		for _, rec := range g {
			require.NoError(t, rec.err)
			require.True(t, rec.ok)
		}
	}
	require.LessOrEqual(t, len(sizes), most, "transactions and their attempts: %v", sizes)
	left, err := s.Deliveries(context.Background(), Filter{HookID: h.ID, State: Pending})
	require.NoError(t, err)
	require.Empty(t, left)
}

// TestRecorderCommitsAFullGroupAtOnce: more attempts than a transaction
// takes are recorded in groups of at most maxRecordBatch, every one.
func TestRecorderCommitsAFullGroupAtOnce(t *testing.T) {
	s, _ := newStore(t)
	h := addHook(t, s, Hook{URL: "http://127.0.0.1:1/hook"})
	n := 2*maxRecordBatch + 10
	var evs []cdr.Event
	for i := range n {
		evs = append(evs, event(fmt.Sprintf("call-%d", i), 1, cdr.CallInit))
	}
	enqueue(t, s, evs...)
	ds, err := s.Deliveries(context.Background(), Filter{HookID: h.ID, State: Pending, Limit: n})
	require.NoError(t, err)
	require.Len(t, ds, n)

	groups := make(chan []*recording, n)
	rc := newRecorder(s, func(recs []*recording) { groups <- recs })
	done := make(chan struct{})
	go func() { rc.run(context.Background()); close(done) }()
	for _, d := range ds {
		rc.add(&recording{dl: d, hook: h, r: AttemptResult{Status: http.StatusOK}, o: outcome{state: Delivered}, now: time.Now()})
	}
	close(rc.in)
	<-done
	close(groups)
	total := 0
	for g := range groups {
		require.LessOrEqual(t, len(g), maxRecordBatch)
		total += len(g)
	}
	require.Equal(t, n, total)
	left, err := s.Deliveries(context.Background(), Filter{HookID: h.ID, State: Pending})
	require.NoError(t, err)
	require.Empty(t, left)
}
