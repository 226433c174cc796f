package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cluster/clustertest"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
)

// Drain is one delivery stage draining a backlog: the cluster's workers
// from the stream, or (Workers 0) the single node's dispatcher from
// SQLite.
type Drain struct {
	Workers    int
	Deliveries int64
	Elapsed    time.Duration
	PerSec     float64
	// CPUPerDelivery is this process's CPU over the drain per delivery:
	// with the cluster it includes the three NATS servers in the process
	// (the stream reads, the log's replicated writes), which a real
	// deployment spends on other machines.
	CPUPerDelivery time.Duration
}

// NATSStats is kanca on a three-node NATS cluster in the process, beside
// the single node, in the same run.
type NATSStats struct {
	Drains []Drain // 1, 2 and 4 workers
	Single Drain   // the single node's dispatcher, same backlog
	// Load is --calls at --rate spread over three listeners, three
	// workers; SingleLoad the same calls at the same rate into one kanca.
	Load, SingleLoad LoadStats
}

// natsWorkers are the worker counts the drains compare.
var natsWorkers = []int{1, 2, 4}

// benchLease is the workers' lease: short, so that a drain's workers
// share the partitions soon after they start, but not so short that a
// machine busy with the whole cluster misses renewals.
const benchLease = 5 * time.Second

// drainEvents is how many events each drain's backlog has per call.
const drainEvents = 4

func natsPhase(ctx context.Context, o Options, tps []*template) (NATSStats, error) {
	var st NATSStats
	dir, err := os.MkdirTemp("", "kanca-bench-nats-")
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(dir)
	nc, err := clustertest.StartIn(3, dir)
	if err != nil {
		return st, err
	}
	defer nc.Close()
	conns := make([]*cluster.Conn, 3)
	for i, s := range nc.Servers {
		if conns[i], err = cluster.Connect(cluster.Options{URL: s.URL(), Name: "bench", Logger: o.Logger, Once: true}); err != nil {
			return st, err
		}
		defer conns[i].Close()
	}
	recv, err := startReceiver(o.SlowDelay, 0)
	if err != nil {
		return st, err
	}
	defer recv.close()
	hs, err := conns[0].Hooks(ctx)
	if err != nil {
		return st, err
	}
	nums := numbers(tps)
	for _, n := range nums {
		if _, err := hs.AddHook(ctx, hooks.Hook{Number: n, URL: recv.url + "/fast", Format: formats.JSON}); err != nil {
			return st, err
		}
	}

	for _, k := range natsWorkers {
		fmt.Fprintf(o.Progress, "nats: a backlog of %d deliveries drained by %d worker(s)\n", o.Calls*drainEvents, k)
		d, err := clusterDrain(ctx, o, conns, recv, nums, k)
		st.Drains = append(st.Drains, d)
		if err != nil {
			return st, fmt.Errorf("drain with %d workers: %w", k, err)
		}
	}
	fmt.Fprintf(o.Progress, "nats: the same backlog drained by a single node\n")
	if st.Single, err = singleDrain(ctx, o, dir, recv, nums); err != nil {
		return st, fmt.Errorf("single-node drain: %w", err)
	}

	fmt.Fprintf(o.Progress, "nats: %d calls at %s into one kanca\n", o.Calls, rateText(o.Rate))
	if st.SingleLoad, _, err = runLoad(ctx, o, tps, false, nil); err != nil {
		return st, fmt.Errorf("single-node load: %w", err)
	}
	fmt.Fprintf(o.Progress, "nats: %d calls at %s over three listeners, three workers\n", o.Calls, rateText(o.Rate))
	if st.Load, err = clusterLoad(ctx, o, tps, conns, recv); err != nil {
		return st, fmt.Errorf("cluster load: %w", err)
	}
	return st, nil
}

// backlog is the drains' events: calls of drainEvents events each, on
// the hooks' numbers in turn.
func backlog(calls int, nums []string) [][]hooks.Unit {
	now := time.Now()
	var batches [][]hooks.Unit
	var units []hooks.Unit
	for c := range calls {
		call := fmt.Sprintf("bench-%d-%d", now.UnixNano(), c)
		for seq := 1; seq <= drainEvents; seq++ {
			ev := hooks.SampleEvent(cdr.EventTypes[(seq-1)%len(cdr.EventTypes)], nums[c%len(nums)], now)
			ev.CallID, ev.Seq = call, seq
			units = append(units, hooks.Unit{Events: []cdr.Event{ev}})
			if len(units) == 256 {
				batches = append(batches, units)
				units = nil
			}
		}
	}
	return append(batches, units)
}

func commitAll(ctx context.Context, out *hooks.Outbox, batches [][]hooks.Unit) error {
	for _, b := range batches {
		errs, err := out.Commit(ctx, b)
		if err != nil {
			return err
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	return nil
}

// waitDelivered waits until recv has n more fast deliveries than from.
func waitDelivered(ctx context.Context, o Options, recv *receiver, from, n int64) error {
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	for recv.fast.Load()-from < n {
		select {
		case <-recv.arrived:
		case <-time.After(100 * time.Millisecond):
		case <-deadline.C:
			return fmt.Errorf("only %d of %d deliveries arrived in time", recv.fast.Load()-from, n)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func clusterDrain(ctx context.Context, o Options, conns []*cluster.Conn, recv *receiver, nums []string, workers int) (Drain, error) {
	d := Drain{Workers: workers}
	dir, err := os.MkdirTemp("", "kanca-bench-listener-")
	if err != nil {
		return d, err
	}
	defer os.RemoveAll(dir)
	store, err := hooks.Open(filepath.Join(dir, "kanca.db"))
	if err != nil {
		return d, err
	}
	defer store.Close()
	if err := commitAll(ctx, hooks.NewOutbox(store, hooks.OutboxOptions{Forward: true}), backlog(o.Calls, nums)); err != nil {
		return d, err
	}
	// The backlog goes into the stream first: the drain measures the
	// workers alone.
	fctx, stopForward := context.WithCancel(ctx)
	forwarded := make(chan error, 1)
	go func() { forwarded <- (&cluster.Forwarder{Store: store, Conn: conns[0], Logger: o.Logger}).Run(fctx) }()
	for {
		n, err := store.ForwardBacklog(ctx)
		if err != nil || n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopForward()
	<-forwarded

	want := int64(o.Calls * drainEvents)
	from := recv.fast.Load()
	cpu, start := processCPU(), time.Now()
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for i := range workers {
		w, err := cluster.NewWorker(ctx, conns[i%len(conns)], cluster.WorkerOptions{ID: fmt.Sprintf("bench-%d-%d", workers, i),
			Logger: o.Logger, LeaseTTL: benchLease})
		if err != nil {
			stopWorkers()
			wg.Wait()
			return d, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); errs <- w.Run(wctx) }()
	}
	err = waitDelivered(ctx, o, recv, from, want)
	d.Elapsed = time.Since(start)
	used := processCPU() - cpu
	stopWorkers()
	wg.Wait()
	close(errs)
	for e := range errs {
		err = errors.Join(err, e)
	}
	d.Deliveries = recv.fast.Load() - from
	if d.Deliveries > 0 {
		d.PerSec = float64(d.Deliveries) / d.Elapsed.Seconds()
		d.CPUPerDelivery = used / time.Duration(d.Deliveries)
	}
	return d, err
}

func singleDrain(ctx context.Context, o Options, dir string, recv *receiver, nums []string) (Drain, error) {
	var d Drain
	store, err := hooks.Open(filepath.Join(dir, "single.db"))
	if err != nil {
		return d, err
	}
	defer store.Close()
	for _, n := range nums {
		if _, err := store.AddHook(ctx, hooks.Hook{Number: n, URL: recv.url + "/fast", Format: formats.JSON}); err != nil {
			return d, err
		}
	}
	if err := commitAll(ctx, hooks.NewOutbox(store, hooks.OutboxOptions{}), backlog(o.Calls, nums)); err != nil {
		return d, err
	}
	want := int64(o.Calls * drainEvents)
	from := recv.fast.Load()
	cpu, start := processCPU(), time.Now()
	dctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- hooks.NewDispatcher(store, hooks.DispatchOptions{Logger: o.Logger}).Run(dctx) }()
	err = waitDelivered(ctx, o, recv, from, want)
	d.Elapsed = time.Since(start)
	used := processCPU() - cpu
	stop()
	err = errors.Join(err, <-done)
	d.Deliveries = recv.fast.Load() - from
	if d.Deliveries > 0 {
		d.PerSec = float64(d.Deliveries) / d.Elapsed.Seconds()
		d.CPUPerDelivery = used / time.Duration(d.Deliveries)
	}
	return d, err
}

// clusterLoad sends the calls of a load phase through three listeners,
// each beside its own fake Asterisk at a third of the rate, to three
// workers, and times each call from its hangup frame to the receiver.
func clusterLoad(ctx context.Context, o Options, tps []*template, conns []*cluster.Conn, recv *receiver) (LoadStats, error) {
	calls := plan(tps, o.Calls)
	var st LoadStats
	parts := make([][]*template, 3)
	for i, tp := range calls {
		parts[i%3] = append(parts[i%3], tp)
		st.Expected += int64(tp.total)
	}
	st.Calls = countCalls(calls)
	st.Hooks = len(numbers(tps))
	trs := make([]*tracking, 3)
	rigs := make([]*rig, 3)
	defer func() {
		for _, r := range rigs {
			if r != nil {
				r.close()
			}
		}
	}()
	for i := range 3 {
		trs[i] = newTracking(countCalls(parts[i]))
		r, err := newRigOn(ctx, o, tps, false, 0, trs[i].onSend, &listenerOf{conn: conns[i], recv: recv})
		if err != nil {
			return st, err
		}
		rigs[i] = r
	}
	recv.onHangup = func(call string, at time.Time) {
		for _, tr := range trs {
			tr.onHangup(call, at)
		}
	}
	defer func() { recv.onHangup = nil }()
	wctx, stopWorkers := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWorkers(); wg.Wait() }()
	for i := range 3 {
		w, err := cluster.NewWorker(ctx, conns[i], cluster.WorkerOptions{ID: fmt.Sprintf("bench-load-%d", i), Logger: o.Logger,
			LeaseTTL: benchLease})
		if err != nil {
			return st, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(wctx) }()
	}
	from := recv.fast.Load()
	rate := o.Rate / 3
	sendErr := make(chan error, 3)
	ps := make([]*producer, 3)
	for i := range 3 {
		ps[i] = &producer{ast: rigs[i].ast, tr: trs[i], base: time.Now(), rate: rate, speed: o.Speedup,
			until: func(c *clone) int { return len(c.tp.frames) }}
		go func() { _, err := ps[i].send(ctx, parts[i]); sendErr <- err }()
	}
	var err error
	for range 3 {
		err = errors.Join(err, <-sendErr)
	}
	if err == nil {
		o.Timeout += time.Duration(float64(o.Calls) / max(o.Rate, 1) * float64(time.Second))
		err = waitDelivered(ctx, o, recv, from, st.Expected)
	}
	st.Delivered = recv.fast.Load() - from
	var lat []time.Duration
	var first, lastHang time.Time
	for _, tr := range trs {
		tr.mu.Lock()
		lat = append(lat, tr.lat...)
		if first.IsZero() || (!tr.first.IsZero() && tr.first.Before(first)) {
			first = tr.first
		}
		if tr.lastHang.After(lastHang) {
			lastHang = tr.lastHang
		}
		tr.mu.Unlock()
	}
	for _, p := range ps {
		st.Frames += p.frames
	}
	_, last, _ := recv.snapshot()
	st.timing(lat, first, lastHang, last, 0)
	return st, err
}

// printNATS writes the cluster's figures beside the single node's.
func printNATS(w io.Writer, o Options, n *NATSStats) {
	fmt.Fprintf(w, "kanca bench --nats: a three-node NATS JetStream cluster in this process, replicas 3\n")
	fmt.Fprintf(w, "  backlog of %d deliveries (%d calls of %d events, one JSON hook per public number), drained:\n",
		o.Calls*drainEvents, o.Calls, drainEvents)
	var one time.Duration
	for _, d := range n.Drains {
		if d.Workers == 1 {
			one = d.CPUPerDelivery
		}
		ratio := ""
		if one > 0 {
			ratio = fmt.Sprintf(" (%.2f x one worker's)", float64(d.CPUPerDelivery)/float64(one))
		}
		fmt.Fprintf(w, "    %d worker(s): %8.0f deliveries/s, CPU %.3f ms per delivery%s\n", d.Workers, d.PerSec, msf(d.CPUPerDelivery), ratio)
	}
	fmt.Fprintf(w, "    single node:  %8.0f deliveries/s, CPU %.3f ms per delivery (SQLite outbox, one dispatcher)\n",
		n.Single.PerSec, msf(n.Single.CPUPerDelivery))
	fmt.Fprintf(w, "  CPU counts the whole process: with the cluster, its three NATS servers too.\n")
	fmt.Fprintf(w, "  %d calls at %s, hangup frame to POST:\n", o.Calls, rateText(o.Rate))
	for _, l := range []struct {
		name string
		st   LoadStats
	}{{"three listeners, three workers", n.Load}, {"single node", n.SingleLoad}} {
		fmt.Fprintf(w, "    %-31s p50 %s  p95 %s  p99 %s  max %s  (%d of %d deliveries, %.0f/s)\n", l.name+":",
			ms(l.st.P50), ms(l.st.P95), ms(l.st.P99), ms(l.st.Max), l.st.Delivered, l.st.Expected, l.st.DeliveriesPerSec)
	}
}
