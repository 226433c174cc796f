package cluster_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cluster/clustertest"
	"github.com/kanca/kanca/hooks"
)

// The fault tests run load through a three-node cluster: three listeners
// each committing calls of faultEvents events (new calls start while
// others go on, as live calls do), two hooks on their number, three
// workers; then break something, and check that every hook got every
// event of every call, in order per call, each (call, seq) under one
// delivery id however often it came.

const faultEvents = 4

type harness struct {
	t  *testing.T
	nc *clustertest.Cluster
	rc *receiver

	mu    sync.Mutex
	calls []string

	loads       sync.WaitGroup
	stopped     chan struct{}
	loadStopped time.Time
	// every is how often each listener starts a call (default 100 ms).
	every time.Duration
}

type workerRun struct {
	conn *cluster.Conn
	w    *cluster.Worker
	stop func()
}

// listenerRun is a listener's store and its forwarder, which a test may
// replace (a listener killed and started again on its database).
type listenerRun struct {
	store *hooks.Store
	out   *hooks.Outbox
	stop  func()
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	nc := clustertest.Start(t, 3)
	h := newHarnessOn(t, nc.URL())
	h.nc = nc
	return h
}

// newHarnessOn is a harness on a cluster the test runs itself (servers
// as processes).
func newHarnessOn(t *testing.T, url string) *harness {
	t.Helper()
	h := &harness{t: t, rc: newReceiver(t), stopped: make(chan struct{})}
	addHook(t, url, hooks.Hook{Number: "902120000000", URL: h.rc.URL + "/a"})
	addHook(t, url, hooks.Hook{Number: "902120000000", URL: h.rc.URL + "/b"})
	return h
}

func (h *harness) worker(url, id string) *workerRun {
	h.t.Helper()
	// OnlyGiven: a worker behind a proxy stays behind it.
	c, err := cluster.Connect(cluster.Options{URL: url, Name: id, Logger: quiet(), OnlyGiven: true})
	require.NoError(h.t, err)
	h.t.Cleanup(c.Close)
	w, err := cluster.NewWorker(context.Background(), c, cluster.WorkerOptions{ID: id, LeaseTTL: 2 * time.Second,
		ShutdownGrace: time.Second, Retry: quick, Logger: quiet()})
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); require.NoError(h.t, <-done) }) }
	h.t.Cleanup(stop)
	return &workerRun{conn: c, w: w, stop: stop}
}

// kill stops a worker abruptly: its connection goes first, so it can
// neither log what it answered nor give its partitions back; they expire.
// (In the process, standing for kill -9.)
func (wr *workerRun) kill() {
	wr.conn.Close()
	wr.stop()
}

func (h *harness) forwarder(l *listenerRun, url string) {
	h.t.Helper()
	c, err := cluster.Connect(cluster.Options{URL: url, Name: "listener", Logger: quiet(), OnlyGiven: true})
	require.NoError(h.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&cluster.Forwarder{Store: l.store, Conn: c, Logger: quiet()}).Run(ctx) }()
	var once sync.Once
	l.stop = func() { once.Do(func() { c.Close(); cancel(); <-done }) }
	h.t.Cleanup(l.stop)
}

func (h *harness) listener(url string) *listenerRun {
	h.t.Helper()
	s, o := listenerStore(h.t)
	l := &listenerRun{store: s, out: o}
	h.forwarder(l, url)
	return l
}

// load commits calls on l until the harness stops it: every h.every a
// call starts and every live call moves one event on.
func (h *harness) load(l *listenerRun, prefix string) {
	h.loads.Add(1)
	go func() {
		defer h.loads.Done()
		live := map[string]int{}
		every := h.every
		if every == 0 {
			every = 100 * time.Millisecond
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		n := 0
		for stopping := false; !stopping || len(live) > 0; {
			select {
			case <-h.stopped:
				stopping = true
			case <-tick.C:
			}
			if !stopping {
				for range 1 {
					c := fmt.Sprintf("%s-%d", prefix, n)
					n++
					live[c] = 0
					h.mu.Lock()
					h.calls = append(h.calls, c)
					h.mu.Unlock()
				}
			}
			var units []hooks.Unit
			for c, seq := range live {
				ev := hooks.SampleEvent(cdr.CallInitExtension, "902120000000", time.Now())
				ev.CallID, ev.Seq = c, seq+1
				units = append(units, hooks.Unit{Events: []cdr.Event{ev}})
				if live[c] = seq + 1; seq+1 == faultEvents {
					delete(live, c)
				}
			}
			if _, err := l.out.Commit(context.Background(), units); err != nil {
				h.t.Errorf("commit: %v", err)
				return
			}
		}
	}()
}

// finish stops the load and checks what the receiver got.
func (h *harness) finish() {
	h.t.Helper()
	close(h.stopped)
	h.loads.Wait()
	h.loadStopped = time.Now()
	h.mu.Lock()
	calls := append([]string(nil), h.calls...)
	h.mu.Unlock()
	want := 2 * len(calls) * faultEvents
	h.rc.mu.Lock()
	h.rc.mu.Unlock()
	deadline := time.Now().Add(3 * time.Minute)
	for h.rc.count() < want {
		if time.Now().After(deadline) {
			h.t.Fatalf("%d of %d deliveries of %d calls arrived", h.rc.count(), want, len(calls))
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.rc.checkOrder()
	h.rc.mu.Lock()
	defer h.rc.mu.Unlock()
	repeats := 0
	for k, gs := range h.rc.calls {
		ids := map[int]string{}
		for _, g := range gs {
			if id, ok := ids[g.seq]; ok {
				require.Equal(h.t, id, g.id, "%s seq %d: a repeat carries the same delivery id", k, g.seq)
				repeats++
			}
			ids[g.seq] = g.id
		}
		require.Len(h.t, ids, faultEvents, "%s: every event arrived", k)
	}
	require.Len(h.t, h.rc.calls, 2*len(calls), "every call reached both hooks")
	h.t.Logf("%d calls, %d deliveries, %d repeats; all in %s after the load stopped", len(calls), want, repeats, time.Since(h.loadStopped).Round(time.Millisecond))
}

func TestFaultWorkerKilledUnderLoad(t *testing.T) {
	h := newHarness(t)
	s := h.nc.Servers
	var ws []*workerRun
	for i := range 3 {
		ws = append(ws, h.worker(s[i].URL(), fmt.Sprintf("w%d", i+1)))
	}
	for i := range 3 {
		h.load(h.listener(s[i].URL()), fmt.Sprintf("l%d", i+1))
	}
	for round := range 3 {
		time.Sleep(time.Second)
		i := rand.IntN(len(ws))
		ws[i].kill()
		time.Sleep(500 * time.Millisecond)
		ws[i] = h.worker(s[i].URL(), fmt.Sprintf("w%d-%d", i+1, round))
	}
	time.Sleep(time.Second)
	h.finish()
}

func TestFaultListenerKilledUnderLoad(t *testing.T) {
	h := newHarness(t)
	s := h.nc.Servers
	for i := range 3 {
		h.worker(s[i].URL(), fmt.Sprintf("w%d", i+1))
	}
	var ls []*listenerRun
	for i := range 3 {
		l := h.listener(s[i].URL())
		ls = append(ls, l)
		h.load(l, fmt.Sprintf("l%d", i+1))
	}
	for range 3 {
		time.Sleep(700 * time.Millisecond)
		// The forwarder dies mid-publish; the PBX side goes on into
		// the store, and a new one resumes from what was acknowledged.
		i := rand.IntN(len(ls))
		ls[i].stop()
		time.Sleep(300 * time.Millisecond)
		h.forwarder(ls[i], s[i].URL())
	}
	time.Sleep(time.Second)
	h.finish()
}

// Ten NATS servers killed in a row with SIGKILL, a random one each time,
// each started again on its own store after a while: the clients move to
// the others, and the restarted server catches up from its peers.
func TestFaultNATSServersKilledUnderLoad(t *testing.T) {
	procs := clustertest.StartProcs(t, 3)
	url := procs.URL()
	h := newHarnessOn(t, url)
	h.every = 300 * time.Millisecond // ten kills take a while: a lighter load
	for i := range 3 {
		h.worker(url, fmt.Sprintf("w%d", i+1))
	}
	for i := range 3 {
		h.load(h.listener(url), fmt.Sprintf("l%d", i+1))
	}
	for i := range 10 {
		time.Sleep(400 * time.Millisecond)
		srv := rand.IntN(3)
		start := time.Now()
		procs.Kill(srv)
		time.Sleep(700 * time.Millisecond)
		procs.Restart(srv)
		t.Logf("kill -9 %d: %s down and back in %s", i+1, procs.Name(srv), time.Since(start).Round(time.Millisecond))
	}
	time.Sleep(time.Second)
	h.finish()
}

// A listener cut off from NATS keeps taking its PBX's calls into its
// store; they go out, in order, once it is back.
func TestFaultListenerCutOffUnderLoad(t *testing.T) {
	h := newHarness(t)
	h.every = 250 * time.Millisecond // thirty seconds cut off: a modest load
	s := h.nc.Servers
	for i := range 3 {
		h.worker(s[i].URL(), fmt.Sprintf("w%d", i+1))
	}
	proxy := clustertest.NewProxy(t, strings.TrimPrefix(s[0].URL(), "nats://"))
	cut := h.listener(proxy.URL())
	h.load(cut, "cut")
	for i := 1; i < 3; i++ {
		h.load(h.listener(s[i].URL()), fmt.Sprintf("l%d", i+1))
	}
	time.Sleep(time.Second)
	// Thirty seconds cut off: longer than any reconnect back-off or
	// publish timeout, so the backlog must drain from the store.
	proxy.Block()
	time.Sleep(30 * time.Second)
	n, err := cut.store.ForwardBacklog(context.Background())
	require.NoError(t, err)
	require.Positive(t, n, "the cut-off listener's calls wait in its store")
	proxy.Unblock()
	time.Sleep(time.Second)
	h.finish()
}

// A worker that hangs (its connection passes nothing: a stopped process,
// a black hole) loses its partitions when its leases expire; the others
// go on with its calls.
func TestFaultWorkerHangsUnderLoad(t *testing.T) {
	h := newHarness(t)
	s := h.nc.Servers
	proxy := clustertest.NewProxy(t, strings.TrimPrefix(s[0].URL(), "nats://"))
	hung := h.worker(proxy.URL(), "hung")
	h.worker(s[1].URL(), "w2")
	h.worker(s[2].URL(), "w3")
	for i := range 3 {
		h.load(h.listener(s[i].URL()), fmt.Sprintf("l%d", i+1))
	}
	time.Sleep(time.Second)
	before := hung.w.Stats().Delivered
	proxy.Hang()
	waitFor(t, "the hung worker's leases expired", 15*time.Second, func() bool {
		return hung.w.Stats().Partitions == 0
	})
	h.finish()
	t.Logf("the hung worker delivered %d before it hung", before)
	proxy.Unblock()
}

// unanswered is a cluster that loses the answer to the first lookup of a
// stream, the first of a bucket and the first bucket made, as a cluster
// just started or electing a leader does: the client hears nothing until
// its own timeout, and the bucket was made all the same.
type unanswered struct {
	jetstream.JetStream
	mu   sync.Mutex
	lost map[string]bool
}

// lose reports whether this is the first request of its kind; the caller
// then waits out ctx as a client whose request went unanswered does.
func (u *unanswered) lose(kind string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	first := !u.lost[kind]
	u.lost[kind] = true
	return first
}

func (u *unanswered) Stream(ctx context.Context, name string) (jetstream.Stream, error) {
	if u.lose("stream") {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return u.JetStream.Stream(ctx, name)
}

func (u *unanswered) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	if u.lose("bucket") {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return u.JetStream.KeyValue(ctx, bucket)
}

func (u *unanswered) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := u.JetStream.CreateKeyValue(ctx, cfg)
	if u.lose("create bucket") {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return kv, err
}

// TestWorkerStartsThroughUnansweredRequests: a worker starting on a
// cluster that leaves requests unanswered asks again, and starts. (A
// worker that waited once for each answer exited at start when the
// cluster, just started beside it, lost one.)
func TestWorkerStartsThroughUnansweredRequests(t *testing.T) {
	url := clustertest.Start(t, 1).URL()
	addHook(t, url, hooks.Hook{Number: "902120000000", URL: "http://127.0.0.1:1/a"})
	c := connect(t, url)
	u := &unanswered{JetStream: c.JS, lost: map[string]bool{}}
	c.JS = u
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := cluster.NewWorker(ctx, c, cluster.WorkerOptions{LeaseTTL: 2 * time.Second, Logger: quiet()})
	require.NoError(t, err)
	require.Len(t, u.lost, 3, "a stream lookup, a bucket lookup and a bucket made went unanswered")
}

// TestHungWorkerLetsGoOfEveryPartitionWithinItsLease: a worker holding
// every partition whose cluster hangs gives them all up within a few
// lease times, as it must stop sending for them within one. (Renewing
// them one after another, each waiting out its own timeout, took a
// quarter lease per partition, 16 s for 32 and a 2 s lease; and a
// partition's stop waited for its reader, which the NATS client can hold
// for 10 s in its own resubscription.)
func TestHungWorkerLetsGoOfEveryPartitionWithinItsLease(t *testing.T) {
	url := clustertest.Start(t, 1).URL()
	h := newHarnessOn(t, url)
	proxy := clustertest.NewProxy(t, strings.TrimPrefix(url, "nats://"))
	hung := h.worker(proxy.URL(), "alone")
	waitFor(t, "the worker to take every partition", 20*time.Second, func() bool {
		return hung.w.Stats().Partitions == cluster.Partitions
	})
	proxy.Hang()
	start := time.Now()
	waitFor(t, "the hung worker to let go of its partitions", 8*time.Second, func() bool {
		return hung.w.Stats().Partitions == 0
	})
	t.Logf("every partition let go %s after the hang (lease 2 s)", time.Since(start).Round(time.Millisecond))
	proxy.Unblock()
}
