package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cluster/clustertest"
	"github.com/kanca/kanca/hooks"
)

// listenerStore is a listener's local store and the outbox that keeps its
// events for the forwarder.
func listenerStore(t *testing.T) (*hooks.Store, *hooks.Outbox) {
	t.Helper()
	s, err := hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, hooks.NewOutbox(s, hooks.OutboxOptions{Forward: true})
}

// commitCalls commits n calls of k events each, interleaved as live calls
// are, and returns the call ids.
func commitCalls(t *testing.T, o *hooks.Outbox, prefix string, n, k int) []string {
	t.Helper()
	now := time.Now()
	var calls []string
	for i := range n {
		calls = append(calls, fmt.Sprintf("%s-call-%d", prefix, i))
	}
	for seq := 1; seq <= k; seq++ {
		var units []hooks.Unit
		for _, c := range calls {
			ev := hooks.SampleEvent(cdr.CallInitExtension, "902120000000", now)
			ev.CallID, ev.Seq = c, seq
			units = append(units, hooks.Unit{Events: []cdr.Event{ev}})
		}
		errs, err := o.Commit(context.Background(), units)
		require.NoError(t, err)
		for _, e := range errs {
			require.NoError(t, e)
		}
	}
	return calls
}

// streamEvents reads every event in the stream, in stream order.
func streamEvents(t *testing.T, c *cluster.Conn) []cdr.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.Stream(ctx)
	require.NoError(t, err)
	info, err := st.Info(ctx)
	require.NoError(t, err)
	n := int(info.State.Msgs)
	var out []cdr.Event
	if n == 0 {
		return nil
	}
	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	for len(out) < n {
		batch, err := cons.Fetch(n-len(out), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		for m := range batch.Messages() {
			var ev cdr.Event
			require.NoError(t, json.Unmarshal(m.Data(), &ev))
			out = append(out, ev)
		}
		require.NoError(t, batch.Error())
	}
	return out
}

func each(calls []string, k int) map[string]int {
	m := map[string]int{}
	for _, c := range calls {
		m[c] = k
	}
	return m
}

// inOrder checks that each call's events are all there, once, in order.
func inOrder(t *testing.T, evs []cdr.Event, want map[string]int) {
	t.Helper()
	next := map[string]int{}
	for _, ev := range evs {
		next[ev.CallID]++
		require.Equal(t, next[ev.CallID], ev.Seq, "call %s out of order", ev.CallID)
	}
	require.Equal(t, want, next)
}

func connect(t *testing.T, url string) *cluster.Conn {
	t.Helper()
	c, err := cluster.Connect(cluster.Options{URL: url, Name: t.Name(), Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func runForwarder(t *testing.T, f *cluster.Forwarder) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestForwarderPublishesInOrderOnce(t *testing.T) {
	ns := clustertest.Start(t, 1)
	c := connect(t, ns.URL())
	s, o := listenerStore(t)
	calls := commitCalls(t, o, "a", 20, 5)
	f := &cluster.Forwarder{Store: s, Conn: c}
	runForwarder(t, f)
	waitFor(t, "the backlog forwarded", 10*time.Second, func() bool {
		n, err := s.ForwardBacklog(context.Background())
		require.NoError(t, err)
		return n == 0
	})
	inOrder(t, streamEvents(t, c), each(calls, 5))
}

// A listener whose acknowledgements were lost (published, then the
// connection or the process went) publishes again: the stream keeps one
// copy of each event, in the first one's place.
func TestForwarderRepeatsAreDropped(t *testing.T) {
	ns := clustertest.Start(t, 1)
	c := connect(t, ns.URL())
	s, o := listenerStore(t)
	calls := commitCalls(t, o, "a", 5, 3)
	ctx := context.Background()
	pending, err := s.Unforwarded(ctx, 100)
	require.NoError(t, err)
	require.Len(t, pending, 15)
	_, err = c.Stream(ctx)
	require.NoError(t, err)
	for _, ev := range pending[:8] {
		_, err := c.JS.Publish(ctx, cluster.Subject(cluster.Partition(ev.CallID)), ev.Event, jetstream.WithMsgID(ev.ID))
		require.NoError(t, err)
	}
	runForwarder(t, &cluster.Forwarder{Store: s, Conn: c})
	waitFor(t, "the backlog forwarded", 10*time.Second, func() bool {
		n, _ := s.ForwardBacklog(ctx)
		return n == 0
	})
	inOrder(t, streamEvents(t, c), each(calls, 3))
}

// Events committed while NATS is down wait in the store and go out, in
// order, once it is back.
func TestForwarderDrainsAfterOutage(t *testing.T) {
	ns := clustertest.Start(t, 1)
	c := connect(t, ns.URL())
	s, o := listenerStore(t)
	f := &cluster.Forwarder{Store: s, Conn: c}
	runForwarder(t, f)
	before := commitCalls(t, o, "before", 5, 2)
	waitFor(t, "the first calls forwarded", 10*time.Second, func() bool {
		n, _ := s.ForwardBacklog(context.Background())
		return n == 0
	})
	srv := ns.Servers[0]
	srv.Shutdown()
	srv.WaitForShutdown()
	during := commitCalls(t, o, "during", 10, 4)
	time.Sleep(time.Second) // the forwarder fails meanwhile
	n, err := s.ForwardBacklog(context.Background())
	require.NoError(t, err)
	require.Equal(t, 40, n, "nothing can be acknowledged while NATS is down")
	srv.Restart(t)
	waitFor(t, "the outage's backlog forwarded", 30*time.Second, func() bool {
		n, _ := s.ForwardBacklog(context.Background())
		return n == 0
	})
	evs := streamEvents(t, c)
	require.Len(t, evs, 10+40)
	want := each(before, 2)
	maps.Copy(want, each(during, 4))
	inOrder(t, evs, want)
}

// A listener keeps the records of its ended calls (GET /calls/{uuid}) as
// long as a single machine does, not forever: its forwarder prunes them,
// on start and then every minute, as the dispatcher does on one machine.
func TestForwarderPrunesTheRecordsOfOldCalls(t *testing.T) {
	ns := clustertest.Start(t, 1)
	s, o := listenerStore(t)
	for id, ago := range map[string]time.Duration{"old": 40 * 24 * time.Hour, "young": time.Hour} {
		ev := hooks.SampleEvent(cdr.CallHangup, "902120000000", time.Now().Add(-ago))
		ev.CallID = id
		errs, err := o.Commit(context.Background(), []hooks.Unit{{Events: []cdr.Event{ev}}})
		require.NoError(t, err)
		require.NoError(t, errs[0])
	}
	runForwarder(t, &cluster.Forwarder{Store: s, Conn: connect(t, ns.URL())})
	waitFor(t, "the old call's record pruned", 10*time.Second, func() bool {
		_, err := s.Call(context.Background(), "old")
		return errors.Is(err, hooks.ErrNotFound)
	})
	_, err := s.Call(context.Background(), "young")
	require.NoError(t, err, "a call within the retention keeps its record")
}
