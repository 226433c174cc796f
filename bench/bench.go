// Package bench measures kanca's real pipeline under load: calls cloned
// from real ARI recordings (fresh channel ids, name suffixes, linkedids,
// bridge ids, caller numbers and shifted times per clone) are sent through
// the fake Asterisk's WebSocket into the ARI client, the call tracker, the
// SQLite outbox and HTTP delivery to a receiver on 127.0.0.1, and compared
// with baselines measured in the same run: a plain Go client POSTing the
// same bodies and plain SQLite inserts of the same rows.
package bench

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
)

// Options shape a bench run. Zero values take the defaults.
type Options struct {
	Traces string     // directory of recorded scenarios (<name>/events.ndjson)
	Mix    []Scenario // default DefaultMix

	Calls int     // calls to send (default 2000)
	Rate  float64 // calls started per second; 0: as fast as kanca takes them
	// Speedup compresses each call's own timeline (default 10: a 8 s call
	// is sent in 0.8 s). Times in the frames stay at the recorded pace.
	Speedup float64

	Concurrent int           // live calls for the memory measure; 0 skips it
	SlowHook   bool          // run the load again with a slow hook beside every fast one
	SlowDelay  time.Duration // how long the slow hook takes to answer (default 10 s)

	// CPU runs the CPU phase instead of the others: the binary's CPU per
	// call, as a process of its own, beside a bare decode of the frames.
	CPU bool
	// NATS runs the cluster phases instead of the others: deliveries/s
	// and CPU per delivery with 1, 2 and 4 workers, and latency over
	// three listeners, beside the single node's.
	NATS bool
	// BurstCalls > 0 runs the slow-burst phase instead of the others:
	// that many calls at once to hooks answering after SlowDelay.
	BurstCalls int
	// Binary is the kanca the CPU and burst phases run (default this one).
	Binary string
	// Reader is the binary --cpu runs as the bare reader of the events
	// socket (kanca bench --read-ari; default: this one, the release
	// that measures).
	Reader string
	// ChildProfile, if set, is where that kanca writes its CPU profile.
	ChildProfile string

	BaselineRequests int           // POSTs and inserts in the baselines (default: the run's deliveries)
	Timeout          time.Duration // per phase (default 2 min)
	Logger           *slog.Logger  // kanca's own logs; nil discards them
	Progress         io.Writer     // a line per phase; nil: silent
}

func (o *Options) defaults() {
	if o.Traces == "" {
		o.Traces = filepath.Join("testdata", "ari")
	}
	if o.Mix == nil {
		o.Mix = DefaultMix
	}
	if o.Calls <= 0 {
		o.Calls = 2000
	}
	if o.Speedup <= 0 {
		o.Speedup = 10
	}
	if o.SlowDelay <= 0 {
		o.SlowDelay = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// LoadStats is one load phase.
type LoadStats struct {
	Calls, Frames       int
	Hooks               int   // fast hooks (one per public number)
	SlowHooks           int   // hooks answering after SlowDelay
	Expected, Delivered int64 // deliveries to the fast hooks
	Duplicates          int
	Hangups             int // call_hangup deliveries timed
	Elapsed             time.Duration
	CallsPerSec         float64 // calls sent (to their hangup) per second
	DeliveriesPerSec    float64 // fast deliveries received per second
	RowsPerSec          float64 // outbox rows committed per second
	P50, P95, P99, Max  time.Duration
	DepthSamples        []int // pending outbox rows, one a second
	MaxDepth            int
	MeanBatch           float64 // events per outbox group commit
	PeakRSS             int64
}

// MemStats is the memory measure at Concurrent live calls.
type MemStats struct {
	Calls int
	// TrackerPerCall is kanca's own state per live call: the ARI decoder
	// and the tracker fed the same frames, alone, heap after - before.
	TrackerPerCall float64
	// ProcessPerCall is the whole process's heap growth per live call
	// with the pipeline running; it includes the fake Asterisk's copy of
	// every live channel, which a real deployment does not carry.
	ProcessPerCall float64
	HeapBefore     uint64
	HeapAfter      uint64
	RSS            int64 // at the N live calls
	Delivered      bool  // every call then ended and was delivered
}

// Baseline is what the machine does without kanca.
type Baseline struct {
	Count       int
	Concurrency int // POST workers, or rows per transaction for SQLite
	PerSec      float64
	Elapsed     time.Duration
}

// Target is one goal from the issue, reported, never asserted.
type Target struct {
	Name    string
	Goal    string
	Got     string
	Pass    bool
	Applies bool   // the run's settings are those the target is stated for
	Note    string // why it does not apply, or what limits it
}

// Report is everything a bench run measured.
type Report struct {
	Options Options
	Mix     map[string]int // calls per kind
	Load    LoadStats
	Slow    *LoadStats // with --slow-hook
	Memory  *MemStats
	// Delivery is the delivery stage alone, on as many deliveries as the
	// POST baseline sends.
	Delivery DeliveryStats
	Post     Baseline // plain POSTs of the same bodies
	SQLite   Baseline // plain inserts of the same rows
	// Ratios against the same-run baselines.
	DeliveriesVsPost float64
	DeliveryVsPost   float64 // the delivery stage alone
	RowsVsSQLite     float64
	SlowP99Change    float64 // (slow p99 - p99) / p99
	Targets          []Target

	CPU   *CPUStats   // with Options.CPU, instead of the rest
	Burst *BurstStats // with Options.BurstCalls, instead of the rest
	NATS  *NATSStats  // with Options.NATS, instead of the rest
}

// Run runs every phase and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	o.defaults()
	tps, err := loadMix(o.Traces, o.Mix)
	if err != nil {
		return nil, err
	}
	rep := &Report{Options: o, Mix: map[string]int{}}
	if o.CPU {
		fmt.Fprintf(o.Progress, "cpu: %d calls at %s through a kanca process of its own\n", o.Calls, rateText(o.Rate))
		st, err := cpuPhase(ctx, o, tps)
		rep.CPU = &st
		if err != nil {
			return rep, fmt.Errorf("cpu: %w", err)
		}
		return rep, nil
	}
	if o.NATS {
		st, err := natsPhase(ctx, o, tps)
		rep.NATS = &st
		if err != nil {
			return rep, fmt.Errorf("nats: %w", err)
		}
		return rep, nil
	}
	if o.BurstCalls > 0 {
		fmt.Fprintf(o.Progress, "slow burst: %d calls at once to hooks answering in %s\n", o.BurstCalls, o.SlowDelay)
		st, err := burstPhase(ctx, o, tps)
		rep.Burst = &st
		if err != nil {
			return rep, fmt.Errorf("slow burst: %w", err)
		}
		return rep, nil
	}

	if o.Concurrent > 0 {
		fmt.Fprintf(o.Progress, "memory: %d live calls through the tracker alone\n", o.Concurrent)
		per, err := trackerMemory(tps, o.Concurrent)
		if err != nil {
			return rep, err
		}
		rep.Memory = &MemStats{Calls: o.Concurrent, TrackerPerCall: per}
	}

	fmt.Fprintf(o.Progress, "load: %d calls at %s\n", o.Calls, rateText(o.Rate))
	ld, bodies, err := runLoad(ctx, o, tps, false, rep.Mix)
	rep.Load = ld
	if err != nil {
		return rep, fmt.Errorf("load: %w", err)
	}
	if o.SlowHook {
		fmt.Fprintf(o.Progress, "load again with a hook answering in %s beside each fast one\n", o.SlowDelay)
		sl, _, err := runLoad(ctx, o, tps, true, nil)
		rep.Slow = &sl
		if err != nil {
			return rep, fmt.Errorf("load with slow hook: %w", err)
		}
		if ld.P99 > 0 {
			rep.SlowP99Change = float64(sl.P99-ld.P99) / float64(ld.P99)
		}
	}
	if o.Concurrent > 0 {
		fmt.Fprintf(o.Progress, "memory: %d live calls through the whole pipeline\n", o.Concurrent)
		if err := processMemory(ctx, o, tps, rep.Memory); err != nil {
			return rep, fmt.Errorf("memory: %w", err)
		}
	}

	n := o.BaselineRequests
	if n <= 0 {
		n = int(ld.Delivered)
	}
	fmt.Fprintf(o.Progress, "delivery stage: the events of %d deliveries committed and sent\n", n)
	if rep.Delivery, err = deliveryStage(ctx, o, tps, n); err != nil {
		return rep, fmt.Errorf("delivery stage: %w", err)
	}
	workers := ld.Hooks * hooksMaxInFlight
	fmt.Fprintf(o.Progress, "baseline: %d plain POSTs with %d workers\n", n, workers)
	if rep.Post, err = postBaseline(ctx, bodies, n, workers); err != nil {
		return rep, fmt.Errorf("POST baseline: %w", err)
	}
	fmt.Fprintf(o.Progress, "baseline: %d plain SQLite inserts\n", n)
	if rep.SQLite, err = sqliteBaseline(ctx, bodies, n, ld.Hooks); err != nil {
		return rep, fmt.Errorf("SQLite baseline: %w", err)
	}
	if rep.Post.PerSec > 0 {
		rep.DeliveriesVsPost = ld.DeliveriesPerSec / rep.Post.PerSec
		rep.DeliveryVsPost = rep.Delivery.PerSec / rep.Post.PerSec
	}
	if rep.SQLite.PerSec > 0 {
		rep.RowsVsSQLite = ld.RowsPerSec / rep.SQLite.PerSec
	}
	rep.Targets = targets(rep)
	return rep, nil
}

// hooksMaxInFlight is where the dispatcher's per-hook concurrency starts,
// which the POST baseline matches.
const hooksMaxInFlight = hooks.StartInFlight

func rateText(r float64) string {
	if r <= 0 {
		return "full speed"
	}
	return fmt.Sprintf("%g calls/s", r)
}

// plan is the templates of the calls a phase sends, in order.
func plan(tps []*template, n int) []*template {
	p := newPicker(tps)
	out := make([]*template, n)
	for i := range out {
		out[i] = p.next()
	}
	return out
}

// numbers is every public number the templates' events belong to.
func numbers(tps []*template) []string {
	seen := map[string]bool{}
	for _, tp := range tps {
		for n := range tp.events {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// rig is one pipeline against a fake Asterisk, with a temp store.
type rig struct {
	dir    string
	store  *hooks.Store
	outbox *hooks.Outbox
	p      *pipeline.Pipeline
	ast    *aritest.Server
	recv   *receiver
	stop   func() error
	hooks  int
	slow   int
	shared bool // recv is the cluster's, closed by its owner
}

func newRig(ctx context.Context, o Options, tps []*template, slow bool, keep int, onSend func(int)) (*rig, error) {
	return newRigOn(ctx, o, tps, slow, keep, onSend, nil)
}

// listenerOf makes a rig a listener of a NATS cluster (kanca run --nats):
// its events go to the cluster, whose workers deliver to recv.
type listenerOf struct {
	conn *cluster.Conn
	recv *receiver
}

func newRigOn(ctx context.Context, o Options, tps []*template, slow bool, keep int, onSend func(int), l *listenerOf) (*rig, error) {
	dir, err := os.MkdirTemp("", "kanca-bench-")
	if err != nil {
		return nil, err
	}
	r := &rig{dir: dir, shared: l != nil}
	ok := false
	defer func() {
		if !ok {
			r.close()
		}
	}()
	if l != nil {
		r.recv = l.recv
	} else if r.recv, err = startReceiver(o.SlowDelay, keep); err != nil {
		return nil, err
	}
	if r.store, err = hooks.Open(filepath.Join(dir, "kanca.db")); err != nil {
		return nil, err
	}
	for _, n := range numbers(tps) {
		if l != nil {
			break // the cluster holds the hooks
		}
		if _, err := r.store.AddHook(ctx, hooks.Hook{Number: n, URL: r.recv.url + "/fast", Format: formats.JSON,
			Events: hooks.AllEvents(), Enabled: true}); err != nil {
			return nil, err
		}
		r.hooks++
		if slow {
			if _, err := r.store.AddHook(ctx, hooks.Hook{Number: n, URL: r.recv.url + "/slow", Format: formats.JSON,
				Events: hooks.AllEvents(), Enabled: true, Timeout: o.SlowDelay + 5*time.Second}); err != nil {
				return nil, err
			}
			r.slow++
		}
	}
	r.ast = aritest.NewServer(aritest.Options{OnSend: onSend, ForgetSent: true})
	tcfg := cdr.DefaultConfig()
	src, err := ari.New(ari.Config{URL: r.ast.URL, User: "kanca", Password: "kanca", Logger: o.Logger,
		ReadsVariable: tcfg.ReadsVariable})
	if err != nil {
		return nil, err
	}
	// The options kanca run uses, but a short shutdown: the slow hook's
	// requests are cut off at the end instead of waited for.
	r.outbox = hooks.NewOutbox(r.store, hooks.OutboxOptions{Forward: l != nil})
	var disp pipeline.Dispatcher = hooks.NewDispatcher(r.store, hooks.DispatchOptions{Logger: o.Logger, ShutdownGrace: 200 * time.Millisecond})
	if l != nil {
		disp = &cluster.Forwarder{Store: r.store, Conn: l.conn, Logger: o.Logger}
	}
	r.p = &pipeline.Pipeline{
		Source:     src,
		Tracker:    cdr.NewTracker(tcfg),
		Outbox:     r.outbox,
		Dispatcher: disp,
		Journal:    r.store,
		Logger:     o.Logger,
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.p.Run(runCtx) }()
	var once sync.Once
	var runErr error
	r.stop = func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	// Frames sent before kanca has listed the channels would race its list.
	deadline := time.After(o.Timeout)
	for r.ast.Listings() == 0 {
		select {
		case <-r.ast.Changed():
		case err := <-done:
			done <- err
			return nil, fmt.Errorf("pipeline stopped before connecting: %v", err)
		case <-deadline:
			return nil, errors.New("kanca did not connect to the fake Asterisk")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ok = true
	return r, nil
}

func (r *rig) close() {
	if r.stop != nil {
		r.stop()
	}
	if r.ast != nil {
		r.ast.Close()
	}
	if r.recv != nil && !r.shared {
		r.recv.close()
	}
	if r.store != nil {
		r.store.Close()
	}
	os.RemoveAll(r.dir)
}

// tracking times each call from its hangup frame leaving the fake
// Asterisk to its call_hangup reaching the receiver.
type tracking struct {
	mu       sync.Mutex
	hangup   map[int]int    // script index -> call
	byUUID   map[string]int // webhook uuid -> call
	sent     []time.Time    // per call: its hangup frame sent
	lat      []time.Duration
	first    time.Time // first frame sent
	lastHang time.Time // last hangup frame sent
}

func newTracking(calls int) *tracking {
	return &tracking{hangup: map[int]int{}, byUUID: map[string]int{}, sent: make([]time.Time, calls)}
}

func (t *tracking) onSend(i int) {
	now := time.Now()
	t.mu.Lock()
	if t.first.IsZero() {
		t.first = now
	}
	if c, ok := t.hangup[i]; ok {
		delete(t.hangup, i)
		t.sent[c] = now
		t.lastHang = now
	}
	t.mu.Unlock()
}

func (t *tracking) onHangup(uuid string, at time.Time) {
	t.mu.Lock()
	if c, ok := t.byUUID[uuid]; ok && !t.sent[c].IsZero() {
		t.lat = append(t.lat, at.Sub(t.sent[c]))
		delete(t.byUUID, uuid)
	}
	t.mu.Unlock()
}

// cloneHeap orders the live clones by when their next frame is due.
type cloneHeap []*clone

func (h cloneHeap) Len() int { return len(h) }
func (h cloneHeap) Less(i, j int) bool {
	return h[i].due() < h[j].due()
}
func (h cloneHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *cloneHeap) Push(x any)   { *h = append(*h, x.(*clone)) }
func (h *cloneHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// speedup of the clone's own timeline; set per phase.
func (c *clone) due() time.Duration {
	return c.at + time.Duration(float64(c.tp.offsets[c.next])/c.speed)
}

// producer sends the calls of a phase to the fake Asterisk on schedule.
type producer struct {
	ast    *aritest.Server
	tr     *tracking
	gen    generator
	base   time.Time // PBX time of the run's start
	rate   float64
	speed  float64
	until  func(*clone) int // frames of a clone to send
	batch  [][]byte
	keep   *[][]byte // if set, every frame sent is kept here too
	played int       // frames given to the fake Asterisk
	frames int
}

// nominalRate orders the frames of a full-speed run as if calls started at
// this rate, so calls still overlap as on a real PBX.
const nominalRate = 200

// send plays the calls of plan, pacing them when rate > 0, and returns the
// clones (the memory phase ends them later with resume).
func (p *producer) send(ctx context.Context, calls []*template) ([]*clone, error) {
	rate := p.rate
	paced := rate > 0
	if !paced {
		rate = nominalRate
	}
	start := time.Now()
	var h cloneHeap
	var all []*clone
	nextCall := 0
	callNo := 0
	for nextCall < len(calls) || h.Len() > 0 {
		if ctx.Err() != nil {
			return all, ctx.Err()
		}
		startAt := time.Duration(float64(nextCall) / rate * float64(time.Second))
		if nextCall < len(calls) && (h.Len() == 0 || startAt <= h[0].due()) {
			tp := calls[nextCall]
			c := p.gen.clone(tp, p.base.Add(time.Duration(float64(startAt)*p.speed)))
			c.at, c.speed, c.first = startAt, p.speed, callNo
			p.tr.mu.Lock()
			for i := range tp.calls {
				p.tr.byUUID[c.uuid(i)] = callNo + i
			}
			p.tr.mu.Unlock()
			callNo += len(tp.calls)
			nextCall++
			all = append(all, c)
			if p.until(c) > 0 {
				heap.Push(&h, c)
			}
			continue
		}
		if paced {
			if wait := h[0].due() - time.Since(start); wait > 0 {
				p.flush()
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return all, ctx.Err()
				}
			}
		} else if err := p.throttle(ctx); err != nil {
			return all, err
		}
		p.emit(&h)
	}
	p.flush()
	return all, nil
}

// resume sends the rest of the clones' frames, up to until, at full speed.
func (p *producer) resume(ctx context.Context, clones []*clone) error {
	var h cloneHeap
	for _, c := range clones {
		if c.next < p.until(c) {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		if err := p.throttle(ctx); err != nil {
			return err
		}
		p.emit(&h)
	}
	p.flush()
	return nil
}

// throttle flushes a full batch and keeps the script at most a few
// thousand frames ahead of what the fake Asterisk has sent.
func (p *producer) throttle(ctx context.Context) error {
	if len(p.batch) < 256 {
		return nil
	}
	p.flush()
	for p.played-p.ast.Pos() > 4096 {
		select {
		case <-p.ast.Changed():
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (p *producer) flush() {
	if len(p.batch) > 0 {
		p.ast.Play(p.batch...)
		p.played += len(p.batch)
		p.batch = p.batch[:0]
	}
}

// emit renders the next frame of the earliest clone into the batch.
func (p *producer) emit(h *cloneHeap) {
	c := (*h)[0]
	idx := p.played + len(p.batch)
	if call, ok := c.tp.hangup[c.next]; ok {
		p.tr.mu.Lock()
		p.tr.hangup[idx] = c.first + call
		p.tr.mu.Unlock()
	}
	f := c.render(c.next)
	p.batch = append(p.batch, f)
	if p.keep != nil {
		*p.keep = append(*p.keep, f)
	}
	p.frames++
	c.next++
	if c.next < p.until(c) {
		heap.Fix(h, 0)
	} else {
		heap.Pop(h)
	}
}

func countCalls(calls []*template) int {
	n := 0
	for _, tp := range calls {
		n += len(tp.calls)
	}
	return n
}

func runLoad(ctx context.Context, o Options, tps []*template, slow bool, mix map[string]int) (LoadStats, []body, error) {
	calls := plan(tps, o.Calls)
	var st LoadStats
	for _, tp := range calls {
		st.Expected += int64(tp.total)
		if mix != nil {
			mix[tp.Kind]++
		}
	}
	st.Calls = countCalls(calls)
	tr := newTracking(st.Calls)
	keep := 20000
	r, err := newRig(ctx, o, tps, slow, keep, tr.onSend)
	if err != nil {
		return st, nil, err
	}
	defer r.close()
	r.recv.onHangup = tr.onHangup
	st.Hooks, st.SlowHooks = r.hooks, r.slow

	// Outbox depth and RSS, once a second.
	sctx, stopSampling := context.WithCancel(ctx)
	var samples []int
	var peak atomic.Int64
	var swg sync.WaitGroup
	swg.Add(1)
	go func() {
		defer swg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				if d, err := r.store.Depth(sctx); err == nil {
					samples = append(samples, d[hooks.Pending])
				}
				if rss := residentBytes(); rss > peak.Load() {
					peak.Store(rss)
				}
			}
		}
	}()

	p := &producer{ast: r.ast, tr: tr, base: time.Now(), rate: o.Rate, speed: o.Speedup,
		until: func(c *clone) int { return len(c.tp.frames) }}
	sendErr := make(chan error, 1)
	go func() {
		_, err := p.send(ctx, calls)
		sendErr <- err
	}()
	deadline := time.NewTimer(o.Timeout + time.Duration(float64(o.Calls)/max(o.Rate, 1)*float64(time.Second)))
	defer deadline.Stop()
	var waitErr error
	sent := false
	for waitErr == nil && (r.recv.fast.Load() < st.Expected || !sent) {
		select {
		case <-r.recv.arrived:
		case err := <-sendErr:
			sent = true
			waitErr = err
		case <-deadline.C:
			waitErr = fmt.Errorf("only %d of %d deliveries arrived in time", r.recv.fast.Load(), st.Expected)
		case <-ctx.Done():
			waitErr = ctx.Err()
		}
	}
	stopSampling()
	swg.Wait()
	if rss := residentBytes(); rss > peak.Load() {
		peak.Store(rss)
	}
	dups, last, bodies := r.recv.snapshot()
	stopErr := r.stop()

	st.Frames = p.frames
	st.Delivered = r.recv.fast.Load()
	st.Duplicates = dups
	st.DepthSamples = samples
	st.MaxDepth = slices.Max(append([]int{0}, samples...))
	st.PeakRSS = peak.Load()
	ob := r.outbox.Stats()
	if ob.Batches > 0 {
		st.MeanBatch = float64(ob.Events) / float64(ob.Batches)
	}
	tr.mu.Lock()
	lat := slices.Clone(tr.lat)
	first, lastHang := tr.first, tr.lastHang
	tr.mu.Unlock()
	st.timing(lat, first, lastHang, last, ob.Deliveries)
	if waitErr == nil && stopErr != nil {
		waitErr = stopErr
	}
	return st, bodies, waitErr
}

// timing fills the phase's rates and latencies from the calls' hangup to
// POST times, the first frame sent, the last hangup frame sent and the
// last delivery; rows are the outbox rows committed.
func (st *LoadStats) timing(lat []time.Duration, first, lastHang, last time.Time, rows int64) {
	st.Hangups = len(lat)
	if !first.IsZero() {
		st.Elapsed = last.Sub(first)
		if d := lastHang.Sub(first).Seconds(); d > 0 {
			st.CallsPerSec = float64(st.Calls) / d
		}
		if d := st.Elapsed.Seconds(); d > 0 {
			st.DeliveriesPerSec = float64(st.Delivered) / d
			st.RowsPerSec = float64(rows) / d
		}
	}
	st.P50, st.P95, st.P99, st.Max = percentiles(lat)
}

func percentiles(d []time.Duration) (p50, p95, p99, mx time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) time.Duration {
		i := int(q*float64(len(d))+0.5) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return at(0.50), at(0.95), at(0.99), d[len(d)-1]
}

// Short is a run of a few seconds that still goes through every phase.
func Short(traces string) Options {
	return Options{Traces: traces, Calls: 60, Rate: 0, Concurrent: 200, SlowHook: true,
		SlowDelay: 10 * time.Second, BaselineRequests: 300, Timeout: time.Minute}
}
