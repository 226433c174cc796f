package cluster_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cluster/clustertest"
	"github.com/kanca/kanca/hooks"
)

var quick = hooks.RetryPolicy{Initial: 20 * time.Millisecond, Factor: 2, Max: 100 * time.Millisecond, Attempts: 3}

func hooksOn(t *testing.T, url string) *cluster.Hooks {
	t.Helper()
	hs, err := connect(t, url).Hooks(context.Background())
	require.NoError(t, err)
	return hs
}

// A delivery the receiver keeps refusing goes dead, is listed as dead
// from any node, and a retry sends it again with the same id.
func TestDeadDeliveryRetriedFromAnyNode(t *testing.T) {
	ns := clustertest.Start(t, 1)
	rc := newReceiver(t)
	var refuse atomic.Bool
	refuse.Store(true)
	rc.answer(func(*http.Request) int {
		if refuse.Load() {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	h := addHook(t, ns.URL(), hooks.Hook{Number: "902120000000", URL: rc.URL + "/a"})
	startWorker(t, ns.URL(), cluster.WorkerOptions{Retry: quick})
	s, o := listenerStore(t)
	runForwarder(t, &cluster.Forwarder{Store: s, Conn: connect(t, ns.URL()), Logger: quiet()})
	commitCalls(t, o, "x", 2, 2)

	hs := hooksOn(t, ns.URL())
	ctx := context.Background()
	var dead []hooks.Delivery
	waitFor(t, "the deliveries dead", 20*time.Second, func() bool {
		var err error
		dead, err = hs.Deliveries(ctx, hooks.Filter{State: hooks.Dead, HookID: h.ID})
		require.NoError(t, err)
		return len(dead) == 4 // given up, each call's second went on
	})
	d, tries, err := hs.Delivery(ctx, dead[0].ID)
	require.NoError(t, err)
	require.Equal(t, hooks.Dead, d.State)
	require.Len(t, tries, 3)
	require.Equal(t, http.StatusInternalServerError, tries[2].Status)
	require.Equal(t, 0, rc.count())

	refuse.Store(false)
	n, err := hs.RetryDeadProgress(ctx, h.ID, nil)
	require.NoError(t, err)
	require.Equal(t, 4, n)
	waitFor(t, "the retried deliveries", 20*time.Second, func() bool { return rc.count() == 4 })
	rc.checkOrder()
	rc.mu.Lock()
	_, ok := rc.got[dead[0].ID]
	rc.mu.Unlock()
	require.True(t, ok, "a retry carries the delivery's id")
	ds, err := hs.Deliveries(ctx, hooks.Filter{State: hooks.Dead})
	require.NoError(t, err)
	require.Empty(t, ds)
}

// A disabled hook's events are held; enabling it sends them, in order.
func TestHeldUntilEnabled(t *testing.T) {
	ns := clustertest.Start(t, 1)
	rc := newReceiver(t)
	h := addHook(t, ns.URL(), hooks.Hook{Number: "902120000000", URL: rc.URL + "/a"})
	hs := hooksOn(t, ns.URL())
	ctx := context.Background()
	require.NoError(t, hs.SetEnabled(ctx, h.ID, false))
	startWorker(t, ns.URL(), cluster.WorkerOptions{})
	s, o := listenerStore(t)
	runForwarder(t, &cluster.Forwarder{Store: s, Conn: connect(t, ns.URL()), Logger: quiet()})
	commitCalls(t, o, "x", 3, 3)
	waitFor(t, "the events held", 20*time.Second, func() bool {
		got, err := hs.GetHook(ctx, h.ID)
		require.NoError(t, err)
		return got.Held == 9
	})
	require.Equal(t, 0, rc.count())
	n, err := hs.Enable(ctx, h.ID, false)
	require.NoError(t, err)
	require.Equal(t, 9, n)
	waitFor(t, "the held events sent", 20*time.Second, func() bool { return rc.count() == 9 })
	rc.checkOrder()
	got, err := hs.GetHook(ctx, h.ID)
	require.NoError(t, err)
	require.Zero(t, got.Held)
}

// A hook added on one node is used by a worker on another within a
// second, and a 410 disables it for every worker.
func TestHookChangesReachWorkers(t *testing.T) {
	nc := clustertest.Start(t, 3)
	rc := newReceiver(t)
	startWorker(t, nc.Servers[0].URL(), cluster.WorkerOptions{})
	s, o := listenerStore(t)
	runForwarder(t, &cluster.Forwarder{Store: s, Conn: connect(t, nc.Servers[1].URL()), Logger: quiet()})
	h := addHook(t, nc.Servers[2].URL(), hooks.Hook{Number: "902120000000", URL: rc.URL + "/a"})
	time.Sleep(time.Second)
	commitCalls(t, o, "x", 5, 2)
	waitFor(t, "the new hook's deliveries", 20*time.Second, func() bool { return rc.count() == 10 })

	rc.answer(func(*http.Request) int { return http.StatusGone })
	commitCalls(t, o, "y", 1, 1)
	hs := hooksOn(t, nc.Servers[2].URL())
	waitFor(t, "the hook disabled", 20*time.Second, func() bool {
		got, err := hs.GetHook(context.Background(), h.ID)
		require.NoError(t, err)
		return !got.Enabled && got.DisabledReason != ""
	})
}
