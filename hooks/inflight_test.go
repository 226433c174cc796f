package hooks

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

// A receiver that answers slowly but surely gets more requests at once
// than the dispatcher starts with, never more than the hook's
// MaxInFlight, and every call's events still arrive one after another.
func TestSlowReceiverGetsMoreRequestsAtOnce(t *testing.T) {
	s, _ := newStore(t)
	var mu sync.Mutex
	open, most := 0, 0
	var rc orderReceiver
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		open++
		most = max(most, open)
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		rc.ServeHTTP(w, r)
		mu.Lock()
		open--
		mu.Unlock()
	}))
	defer srv.Close()
	const limit, calls, perCall = 2 * StartInFlight, 3 * StartInFlight, 3
	addHook(t, s, Hook{URL: srv.URL, MaxInFlight: limit})
	var units []Unit
	for seq := 1; seq <= perCall; seq++ {
		for c := range calls {
			units = append(units, Unit{Events: []cdr.Event{event(fmt.Sprint("call-", c), seq, cdr.CallInit)}})
		}
	}
	_, err := NewOutbox(s, OutboxOptions{}).Commit(context.Background(), units)
	require.NoError(t, err)
	run(t, s, DispatchOptions{})
	waitFor(t, "every delivery", func() bool { return rc.total() == calls*perCall })

	mu.Lock()
	defer mu.Unlock()
	assert.Greater(t, most, StartInFlight, "grew past where it started")
	assert.LessOrEqual(t, most, limit, "never past the hook's max in flight")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for call, seqs := range rc.calls {
		assert.Equal(t, []int{1, 2, 3}, seqs, "call %s in order", call)
	}
}

// The limit grows by one per answer while calls wait for a slot, halves
// on a failure, and stays within [min(MinInFlight, max), max].
func TestInFlightLimitGrowsAndHalves(t *testing.T) {
	const most = StartInFlight + 4
	hq := newHookQueue(Hook{MaxInFlight: most})
	assert.Equal(t, StartInFlight, hq.limit)
	hq.succeeded()
	assert.Equal(t, StartInFlight, hq.limit, "nothing waited for a slot")
	hq.ready = []*callQueue{{}}
	for range 10 {
		hq.succeeded()
	}
	assert.Equal(t, most, hq.limit, "capped by the hook")
	hq.failed()
	assert.Equal(t, most/2, hq.limit)
	for hq.limit > MinInFlight {
		hq.failed()
	}
	hq.failed()
	assert.Equal(t, MinInFlight, hq.limit, "never below the floor")
	hq.setHook(Hook{MaxInFlight: 2})
	assert.Equal(t, 2, hq.limit, "a lowered max takes effect at once")
	hq.failed()
	assert.Equal(t, 2, hq.limit, "the floor is the max when that is lower")

	one := newHookQueue(Hook{MaxInFlight: 1})
	one.ready = []*callQueue{{}}
	one.succeeded()
	assert.Equal(t, 1, one.limit)
}

func TestMaxInFlightIsAHookSetting(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h := addHook(t, s, Hook{URL: "http://127.0.0.1:1/"})
	assert.Equal(t, DefaultMaxInFlight, h.MaxInFlight)
	n := 300
	h, err := s.UpdateHook(ctx, h.ID, HookUpdate{MaxInFlight: &n})
	require.NoError(t, err)
	got, err := s.GetHook(ctx, h.ID)
	require.NoError(t, err)
	assert.Equal(t, 300, got.MaxInFlight)
	for _, bad := range []int{-1, MaxMaxInFlight + 1} {
		_, err := s.UpdateHook(ctx, h.ID, HookUpdate{MaxInFlight: &bad})
		assert.ErrorContains(t, err, "max in flight")
	}
}
