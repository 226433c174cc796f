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

// recorderRig is a store holding n pending deliveries to one hook and a
// recorder running on it, whose groups arrive on groups.
type recorderRig struct {
	s      *Store
	h      Hook
	ds     []Delivery
	rc     *recorder
	groups chan []*recording
	done   chan struct{}
}

func newRecorderRig(t *testing.T, n int) *recorderRig {
	t.Helper()
	s, _ := newStore(t)
	rg := &recorderRig{s: s, h: addHook(t, s, Hook{URL: "http://127.0.0.1:1/hook"}),
		groups: make(chan []*recording, n), done: make(chan struct{})}
	var evs []cdr.Event
	for i := range n {
		evs = append(evs, event(fmt.Sprintf("call-%d", i), 1, cdr.CallInit))
	}
	enqueue(t, s, evs...)
	var err error
	rg.ds, err = s.Deliveries(context.Background(), Filter{HookID: rg.h.ID, State: Pending, Limit: n})
	require.NoError(t, err)
	require.Len(t, rg.ds, n)
	rg.rc = newRecorder(s, func(recs []*recording) { rg.groups <- recs })
	go func() { rg.rc.run(context.Background()); close(rg.done) }()
	return rg
}

// delivered hands d's answer, a 200, to the recorder.
func (rg *recorderRig) delivered(d Delivery) {
	rg.rc.add(&recording{dl: d, hook: rg.h, r: AttemptResult{Status: http.StatusOK}, o: outcome{state: Delivered}, now: time.Now()})
}

// close stops the recorder once it recorded everything and returns the
// sizes of its groups, after checking that every delivery was recorded
// delivered.
func (rg *recorderRig) close(t *testing.T) []int {
	t.Helper()
	close(rg.rc.in)
	<-rg.done
	close(rg.groups)
	var sizes []int
	for g := range rg.groups {
		sizes = append(sizes, len(g))
		for _, rec := range g {
			require.NoError(t, rec.err)
			require.True(t, rec.ok)
		}
	}
	left, err := rg.s.Deliveries(context.Background(), Filter{HookID: rg.h.ID, State: Pending})
	require.NoError(t, err)
	require.Empty(t, left)
	return sizes
}

// TestRecorderGroupsAttemptsHandedOverApart: attempts that finish a few
// milliseconds apart, as a call's deliveries do at 50 calls/s, are
// recorded in one transaction per linger they span, not one each. (With
// the 5 ms linger of before, these twelve took five transactions.)
func TestRecorderGroupsAttemptsHandedOverApart(t *testing.T) {
	rg := newRecorderRig(t, 12)
	start := time.Now()
	for _, d := range rg.ds {
		rg.delivered(d)
		time.Sleep(2 * time.Millisecond)
	}
	// A group waits at least 40 ms for more (a loaded machine stretches
	// the sleeps: a group per 40 ms they spanned is the most there may be).
	most := int(time.Since(start)/(40*time.Millisecond)) + 1
	sizes := rg.close(t)
	require.LessOrEqual(t, len(sizes), most, "transactions and their attempts: %v", sizes)
}

// TestRecorderCommitsAFullGroupAtOnce: more attempts than a transaction
// takes are recorded in groups of at most maxRecordBatch, every one.
func TestRecorderCommitsAFullGroupAtOnce(t *testing.T) {
	n := 2*maxRecordBatch + 10
	rg := newRecorderRig(t, n)
	for _, d := range rg.ds {
		rg.delivered(d)
	}
	total := 0
	for _, size := range rg.close(t) {
		require.LessOrEqual(t, size, maxRecordBatch)
		total += size
	}
	require.Equal(t, n, total)
}
