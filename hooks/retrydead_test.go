package hooks

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

// deadFixture enqueues a call_init for each of calls calls, for two hooks
// on the same number, and kills the deliveries (both hooks') of the calls
// dead picks, leaving the rest delivered. It returns the hooks and the ids
// killed, per hook.
func deadFixture(t *testing.T, s *Store, calls int, dead func(call int) bool) (h1, h2 Hook, killed map[int64][]string) {
	t.Helper()
	h1 = addHook(t, s, Hook{URL: "http://127.0.0.1:1/one"})
	h2 = addHook(t, s, Hook{URL: "http://127.0.0.1:1/two"})
	var evs []cdr.Event
	for c := 0; c < calls; c++ {
		evs = append(evs, event(fmt.Sprintf("call-%04d", c), 1, cdr.CallInit))
	}
	enqueue(t, s, evs...)
	killed = map[int64][]string{}
	for _, d := range deliveries(t, s, Filter{}) {
		var c int
		_, err := fmt.Sscanf(d.CallID, "call-%d", &c)
		require.NoError(t, err)
		st := Delivered
		if dead(c) {
			st = Dead
			killed[d.HookID] = append(killed[d.HookID], d.ID)
		}
		setState(t, s, d.ID, st)
	}
	return h1, h2, killed
}

// setState stands in for the dispatcher's verdict, with an attempt spent,
// so that a requeue visibly resets it.
func setState(t *testing.T, s *Store, id string, st State) {
	t.Helper()
	_, err := s.db.Exec("UPDATE outbox SET state = ?, attempts = 3, next_attempt_at = 12345 WHERE id = ?", string(st), id)
	require.NoError(t, err)
}

type progressLog [][2]int

func (p *progressLog) record(done, total int) { *p = append(*p, [2]int{done, total}) }

func TestRetryDeadWorksInBatchesAndReports(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h1, h2, killed := deadFixture(t, s, 20, func(c int) bool { return c%3 != 0 })
	dead := len(killed[h1.ID]) + len(killed[h2.ID])
	require.Equal(t, 26, dead)

	var p progressLog
	n, err := s.retryDead(ctx, 0, 4, p.record)
	require.NoError(t, err)
	assert.Equal(t, dead, n)
	want := progressLog{}
	for done := 4; done < dead; done += 4 {
		want = append(want, [2]int{done, dead})
	}
	want = append(want, [2]int{dead, dead})
	assert.Equal(t, want, p, "one report per batch of 4, out of all dead at the start")

	for _, d := range deliveries(t, s, Filter{}) {
		if d.State == Pending {
			assert.Zero(t, d.Attempts, d.ID)
			assert.Zero(t, d.NextAttempt.UnixMilli(), "due at once: %s", d.ID)
		} else {
			assert.Equal(t, Delivered, d.State, "a delivered one is left alone: %s", d.ID)
		}
	}
	assert.Len(t, deliveries(t, s, Filter{State: Pending}), dead)

	n, err = s.retryDead(ctx, 0, 4, p.record)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is dead any more")
}

func TestRetryDeadOfOneHook(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h1, h2, killed := deadFixture(t, s, 9, func(c int) bool { return c != 4 })
	var p progressLog
	n, err := s.retryDead(ctx, h2.ID, 3, p.record)
	require.NoError(t, err)
	assert.Equal(t, len(killed[h2.ID]), n)
	assert.Equal(t, progressLog{{3, 8}, {6, 8}, {8, 8}}, p)
	assert.Len(t, deliveries(t, s, Filter{HookID: h2.ID, State: Pending}), 8)
	assert.Len(t, deliveries(t, s, Filter{HookID: h1.ID, State: Dead}), 8, "the other hook's stay dead")

	_, err = s.retryDead(ctx, 999, 3, nil)
	assert.True(t, isNotFound(err), "%v", err)
}

// A dispatcher may kill requeued deliveries again at once (a receiver that
// answers 410, a policy of one attempt). The retry must still end, having
// requeued each delivery dead at its start exactly once.
func TestRetryDeadEndsWhileDeliveriesDieBehindIt(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	_, _, killed := deadFixture(t, s, 10, func(int) bool { return true })
	requeued := map[string]int{}
	batches := 0
	n, err := s.retryDead(ctx, 0, 3, func(done, total int) {
		batches++
		for _, d := range deliveries(t, s, Filter{State: Pending}) {
			requeued[d.ID]++
			setState(t, s, d.ID, Dead)
		}
	})
	require.NoError(t, err)
	assert.Equal(t, 20, n)
	assert.Equal(t, 7, batches, "20 in batches of 3")
	require.Len(t, requeued, 20)
	for _, ids := range killed {
		for _, id := range ids {
			assert.Equal(t, 1, requeued[id], id)
		}
	}
}

// Deliveries that die while a retry runs: ahead of its walk they are
// requeued with the rest; enqueued after it started they wait for the next
// retry, so that the retry has an end.
func TestRetryDeadDuringTheWalk(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	deadFixture(t, s, 10, func(c int) bool { return c != 8 })
	var late []Delivery
	var p progressLog
	n, err := s.retryDead(ctx, 0, 5, func(done, total int) {
		p.record(done, total)
		if len(p) > 1 {
			return
		}
		for _, d := range deliveries(t, s, Filter{State: Delivered}) {
			setState(t, s, d.ID, Dead) // call-0008, enqueued before the last dead one
		}
		enqueue(t, s, event("call-late", 1, cdr.CallInit))
		late = deliveries(t, s, Filter{CallID: "call-late"})
		for _, d := range late {
			setState(t, s, d.ID, Dead)
		}
	})
	require.NoError(t, err)
	assert.Equal(t, 20, n)
	assert.Equal(t, progressLog{{5, 18}, {10, 18}, {15, 18}, {20, 20}}, p, "never more done than in all")
	require.Len(t, late, 2)
	var stillDead []string
	for _, d := range deliveries(t, s, Filter{State: Dead}) {
		stillDead = append(stillDead, d.ID)
	}
	assert.ElementsMatch(t, []string{late[0].ID, late[1].ID}, stillDead, "the late call's stay dead")
}

func TestRetryDeadStopsWithItsContextKeepingWhatItDid(t *testing.T) {
	s, _ := newStore(t)
	deadFixture(t, s, 10, func(int) bool { return true })
	ctx, cancel := context.WithCancel(context.Background())
	n, err := s.retryDead(ctx, 0, 6, func(done, total int) { cancel() })
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "stopped after 6 of 20")
	assert.Equal(t, 6, n)
	assert.Len(t, deliveries(t, s, Filter{State: Pending}), 6, "the committed batch stays requeued")

	n, err = s.RetryDead(context.Background(), 0)
	require.NoError(t, err)
	assert.Equal(t, 14, n, "a second run finishes the rest")
}

// The batch size RetryDeadProgress uses, with more than two batches.
func TestRetryDeadProgressReportsEachBatch(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	calls := RetryDeadBatch + RetryDeadBatch/5 + 1 // two deliveries each
	deadFixture(t, s, calls, func(int) bool { return true })
	var p progressLog
	n, err := s.RetryDeadProgress(ctx, 0, p.record)
	require.NoError(t, err)
	assert.Equal(t, 2*calls, n)
	assert.Equal(t, progressLog{{RetryDeadBatch, 2 * calls}, {2 * RetryDeadBatch, 2 * calls}, {2 * calls, 2 * calls}}, p)
}
