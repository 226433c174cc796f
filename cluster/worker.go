package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/hooks"
)

// WorkerOptions tune a worker; zero values take the defaults.
type WorkerOptions struct {
	// ID names the worker in the leases; default host-pid-random.
	ID             string
	Retry          hooks.RetryPolicy // zero: hooks.DefaultRetryPolicy
	NetPolicy      hooks.NetPolicy
	ConnectTimeout time.Duration
	Encoding       hooks.Encoding
	// LeaseTTL is how long a partition stays a worker's without renewal
	// (default 10 s): how long a dead or hung worker's calls wait.
	LeaseTTL time.Duration
	// ShutdownGrace is how long a stopping worker waits for requests in
	// flight before cutting them off (default 10 s).
	ShutdownGrace time.Duration
	// OnAttempt, if set, sees every logged attempt (benchmarks, tests).
	OnAttempt func(Record)
	Logger    *slog.Logger
}

// Worker delivers the cluster's call events to the hooks bound to their
// numbers (kanca deliver). Calls are spread over workers by partition: a
// worker leases partitions (LeaseBucket, an entry renewed by compare-and-
// set, expiring after LeaseTTL), takes about its share of them (the
// partitions over the live workers), and reads each one it holds in
// stream order. It keeps one queue per hook and call, as the dispatcher
// does: a call's next delivery to a hook goes once the previous one was
// answered or given up, and a slow hook holds only its own queues. An
// event leaves the stream once every hook has it, delivered or dead;
// until then a worker that takes the partition over reads it again and
// skips, by the delivery log, what was done.
type Worker struct {
	conn   *Conn
	opts   WorkerOptions
	log    *slog.Logger
	sender *hooks.Sender
	// receivers logs each hook's receiver failing and answering again.
	receivers *hooks.Receivers
	stream    jetstream.Stream
	hooks     *Hooks
	dlog      *Log
	leases    jetstream.KeyValue

	mu       sync.Mutex
	byNumber map[string][]hooks.Hook
	byID     map[int64]hooks.Hook
	slots    map[int64]chan struct{} // per hook: its requests open at once
	parts    map[int]*partition

	delivered, failed, dead atomic.Int64
}

// NewWorker returns a worker on c, creating the stream and buckets it
// needs if they are missing.
func NewWorker(ctx context.Context, c *Conn, o WorkerOptions) (*Worker, error) {
	if o.Retry == (hooks.RetryPolicy{}) {
		o.Retry = hooks.DefaultRetryPolicy
	}
	if err := o.Retry.Validate(); err != nil {
		return nil, err
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 10 * time.Second
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ID == "" {
		host, _ := os.Hostname()
		o.ID = fmt.Sprintf("%s-%d-%04x", host, os.Getpid(), rand.IntN(1<<16))
	}
	log := o.Logger.With("worker", o.ID)
	w := &Worker{conn: c, opts: o, log: log, receivers: hooks.NewReceivers(log),
		sender: hooks.NewSender(o.ConnectTimeout, nil, o.NetPolicy),
		slots:  map[int64]chan struct{}{}, parts: map[int]*partition{}}
	var err error
	if w.stream, err = c.Stream(ctx); err != nil {
		return nil, err
	}
	if w.hooks, err = c.Hooks(ctx); err != nil {
		return nil, err
	}
	w.dlog = w.hooks.log
	if w.leases, err = c.bucket(ctx, jetstream.KeyValueConfig{Bucket: LeaseBucket, Description: "kanca partition leases",
		History: 1, TTL: o.LeaseTTL}); err != nil {
		return nil, err
	}
	// The entries expire after the bucket's TTL, set by whoever made it:
	// a worker renewing at another pace would lose leases it thinks it
	// holds, and two workers would read one partition.
	st, err := w.leases.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", LeaseBucket, err)
	}
	if ttl := st.TTL(); ttl > 0 && ttl != w.opts.LeaseTTL {
		w.log.Info("lease time set by the cluster", "lease", ttl, "asked", w.opts.LeaseTTL)
		w.opts.LeaseTTL = ttl
	}
	return w, nil
}

// ID is the worker's name in the leases.
func (w *Worker) ID() string { return w.opts.ID }

// Run delivers until ctx ends, then lets its requests in flight finish
// (up to ShutdownGrace) and gives its partitions back.
func (w *Worker) Run(ctx context.Context) error {
	defer w.sender.Close()
	watched := make(chan error, 1)
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	ready := make(chan struct{})
	go func() { watched <- w.watchHooks(wctx, ready) }()
	select {
	case <-ready:
	case err := <-watched:
		return err
	case <-ctx.Done():
		return nil
	}
	tick := time.NewTicker(w.opts.LeaseTTL / 4)
	defer tick.Stop()
	for {
		w.balance(ctx)
		select {
		case <-ctx.Done():
			w.leave()
			return nil
		case err := <-watched:
			w.leave()
			return err
		case <-tick.C:
		}
	}
}

// watchHooks keeps the worker's view of the hooks: a change made on any
// node arrives here within the watch's latency.
func (w *Worker) watchHooks(ctx context.Context, ready chan<- struct{}) error {
	for ctx.Err() == nil {
		kw, err := w.hooks.kv.WatchAll(ctx)
		if err != nil {
			w.log.Warn("watch hooks", "err", err)
			time.Sleep(time.Second)
			continue
		}
		byID := map[int64]hooks.Hook{}
		for e := range kw.Updates() {
			if e == nil {
				w.setHooks(byID)
				if ready != nil {
					close(ready)
					ready = nil
				}
				continue
			}
			if e.Key() == nextKey {
				continue
			}
			id, err := strconv.ParseInt(e.Key(), 10, 64)
			if err != nil {
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				delete(byID, id)
			} else if h, err := decodeHook(e.Value()); err != nil {
				w.log.Error("hook in the cluster does not decode", "key", e.Key(), "err", err)
			} else {
				byID[id] = h
			}
			if ready == nil {
				w.setHooks(byID)
			}
		}
		_ = kw.Stop()
	}
	return nil
}

func (w *Worker) setHooks(byID map[int64]hooks.Hook) {
	byNumber := map[string][]hooks.Hook{}
	ids := make(map[int64]hooks.Hook, len(byID))
	for id, h := range byID {
		ids[id] = h
		byNumber[h.Number] = append(byNumber[h.Number], h)
	}
	for _, hs := range byNumber {
		sortHooks(hs)
	}
	w.mu.Lock()
	w.byNumber, w.byID = byNumber, ids
	w.mu.Unlock()
}

func sortHooks(hs []hooks.Hook) {
	for i := 1; i < len(hs); i++ {
		for j := i; j > 0 && hs[j].ID < hs[j-1].ID; j-- {
			hs[j], hs[j-1] = hs[j-1], hs[j]
		}
	}
}

func (w *Worker) hook(id int64) (hooks.Hook, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h, ok := w.byID[id]
	return h, ok
}

// slot is hook h's bound on requests open from this worker.
func (w *Worker) slot(h hooks.Hook) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.slots[h.ID]
	if s == nil || cap(s) != max(h.MaxInFlight, 1) {
		s = make(chan struct{}, max(h.MaxInFlight, 1))
		w.slots[h.ID] = s
	}
	return s
}

const workerKeyPrefix = "w."

func leaseKey(p int) string { return "p." + strconv.Itoa(p) }

// balance renews the worker's leases and presence, gives back what is
// beyond its share and takes free partitions up to it. Every call to the
// cluster is bounded: renewals must not wait behind a server that hangs.
func (w *Worker) balance(ctx context.Context) {
	step := w.opts.LeaseTTL / 4
	w.mu.Lock()
	owned := make([]*partition, 0, len(w.parts))
	for _, p := range w.parts {
		owned = append(owned, p)
	}
	w.mu.Unlock()
	// The renewals go side by side: one after another, a slow or hung
	// cluster would take a quarter lease per partition, longer than the
	// lease itself for a worker holding a few.
	var wg sync.WaitGroup
	var running atomic.Int64
	for _, p := range owned {
		if p.ended.Load() {
			continue
		}
		wg.Go(func() {
			if !p.renew(ctx) {
				go w.stop(p, false)
				return
			}
			if p.running() {
				running.Add(1)
			}
		})
	}
	wg.Wait()
	n := int(running.Load())
	bctx, cancel := context.WithTimeout(ctx, step)
	defer cancel()
	if _, err := w.leases.Put(bctx, workerKeyPrefix+w.opts.ID, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
		w.log.Warn("announce worker", "err", err)
		return
	}
	live := 0
	kl, err := w.leases.ListKeysFiltered(bctx, workerKeyPrefix+"*")
	if err != nil {
		return
	}
	for range kl.Keys() {
		live++
	}
	share := (Partitions + max(live, 1) - 1) / max(live, 1)
	for _, p := range owned {
		if n <= share {
			break
		}
		if p.running() && !p.ended.Load() {
			// Given back in the background: its requests in flight
			// may take a while, and the other leases must be renewed
			// meanwhile (its own too, until it is released).
			p.stopping.Store(true)
			go w.stop(p, true)
			n--
		}
	}
	for _, i := range rand.Perm(Partitions) {
		if n >= share || bctx.Err() != nil {
			break
		}
		w.mu.Lock()
		_, mine := w.parts[i]
		w.mu.Unlock()
		if mine {
			continue
		}
		rev, err := w.leases.Create(bctx, leaseKey(i), []byte(w.opts.ID))
		if err != nil {
			continue // held by another worker, or the cluster is away
		}
		if w.start(bctx, i, rev) != nil {
			n++
		}
	}
}

// leave gives the partitions back and takes the worker off the live list
// at once, so the others' shares grow without waiting for it to expire.
func (w *Worker) leave() {
	w.stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.LeaseTTL/4)
	defer cancel()
	_ = w.leases.Delete(ctx, workerKeyPrefix+w.opts.ID)
}

// stopAll gives every partition back, waiting for the requests in flight.
func (w *Worker) stopAll() {
	w.mu.Lock()
	ps := make([]*partition, 0, len(w.parts))
	for _, p := range w.parts {
		ps = append(ps, p)
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); w.stop(p, true) }()
	}
	wg.Wait()
}

// WorkerStats are a worker's totals since it started.
type WorkerStats struct {
	Delivered, Failed, Dead int64
	Partitions              int
}

// Stats returns the worker's counters.
func (w *Worker) Stats() WorkerStats {
	w.mu.Lock()
	n := len(w.parts)
	w.mu.Unlock()
	return WorkerStats{Delivered: w.delivered.Load(), Failed: w.failed.Load(), Dead: w.dead.Load(), Partitions: n}
}

// decodeEvent reads a stream message's event.
func decodeEvent(b []byte) (cdr.Event, error) {
	var ev cdr.Event
	err := json.Unmarshal(b, &ev)
	return ev, err
}

var errLeaseLost = errors.New("lease lost")
