package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanca/kanca/cdr"
)

type finished struct {
	hook int64
	id   string
}

// DispatchOptions tune the dispatcher; zero values take the defaults.
type DispatchOptions struct {
	Retry RetryPolicy // zero: DefaultRetryPolicy
	// MaxInFlight bounds concurrent requests per hook (default 4), so a
	// hanging receiver holds at most that many workers, all its own.
	MaxInFlight int
	// PollInterval is how often due retries and changes made by other
	// processes (the CLI) are looked for (default 1 s). New events wake
	// the dispatcher at once.
	PollInterval time.Duration
	// ShutdownGrace is how long Run waits for requests in flight before
	// cancelling them (default 10 s).
	ShutdownGrace  time.Duration
	ConnectTimeout time.Duration // default 5 s
	// NetPolicy limits the networks hooks are delivered to (zero: any).
	NetPolicy NetPolicy
	// Retention is how long attempts and delivered deliveries are kept
	// (default 30 days); PruneInterval how often they are pruned (1 h).
	Retention     time.Duration
	PruneInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	// OnAttempt, if set, is called after each attempt is recorded, from
	// the goroutine that sent it: it must be quick and safe for concurrent
	// use. Requests cut off by shutdown are not attempts.
	OnAttempt func(AttemptReport)
}

// Outcome is what one recorded attempt came to.
type Outcome string

const (
	OutcomeDelivered Outcome = "delivered" // a 2xx came back
	OutcomeFailed    Outcome = "failed"    // failed; will be retried
	OutcomeDead      Outcome = "dead"      // failed; given up
	OutcomeGone      Outcome = "gone"      // the receiver answered 410: given up, hook disabled
)

// AttemptReport describes one recorded attempt, for metrics.
type AttemptReport struct {
	HookID  int64
	Outcome Outcome
	Status  int // 0: no response
	Latency time.Duration
}

// HookCounts are one hook's attempt outcomes since NewDispatcher.
type HookCounts struct {
	Delivered, Failed, Dead, Gone int64
}

// Dispatcher sends the outbox's deliveries.
type Dispatcher struct {
	s      *Store
	opts   DispatchOptions
	sender *sender
	rec    *recorder // Run's: set before its workers start
	log    *slog.Logger

	mu sync.Mutex
	// inflight holds, per hook, the deliveries sent or being sent and not
	// yet recorded: the database still has them due, so they must not be
	// sent again. sending counts those whose request is still open, which
	// MaxInFlight bounds: a worker waiting for its record to commit holds
	// no request slot, so the disk does not set the delivery rate.
	inflight map[int64]map[string]bool
	sending  map[int64]int
	// finished sends leave inflight only at the start of a scheduling
	// pass: removed any earlier, a pass that read a delivery as due just
	// before its result was recorded would send it a second time.
	finished []finished

	kick chan struct{} // a send finished: its call's next may be due

	byHook map[int64]*HookCounts // guarded by mu

	delivered, failed, dead, gone atomic.Int64
	latencyCount, latencySum      atomic.Int64 // sum in microseconds
}

// NewDispatcher returns a dispatcher for s's outbox.
func NewDispatcher(s *Store, o DispatchOptions) *Dispatcher {
	if o.Retry == (RetryPolicy{}) {
		o.Retry = DefaultRetryPolicy
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 4
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Dispatcher{
		s:        s,
		opts:     o,
		sender:   newSender(o.ConnectTimeout, o.Now, o.NetPolicy),
		log:      o.Logger,
		inflight: map[int64]map[string]bool{},
		sending:  map[int64]int{},
		kick:     make(chan struct{}, 1),
		byHook:   map[int64]*HookCounts{},
	}
}

// Run sends due deliveries until ctx ends, then waits up to ShutdownGrace
// for requests in flight and returns. What is not delivered stays queued
// and is sent by the next Run, a request cut off by shutdown included.
func (d *Dispatcher) Run(ctx context.Context) error {
	if err := d.opts.Retry.validate(); err != nil {
		return err
	}
	defer d.sender.close()
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()
	var wg sync.WaitGroup
	d.rec = newRecorder(d.s)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		d.rec.run(context.WithoutCancel(ctx))
	}()
	// Workers are done by the time Run returns (shutdown waits for them),
	// so nothing sends to the recorder after this close.
	defer func() {
		close(d.rec.in)
		<-recorded
	}()

	d.prune(ctx)
	prune := time.NewTicker(d.opts.PruneInterval)
	defer prune.Stop()
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		next := d.schedule(ctx, sendCtx, &wg)
		wait.Reset(next)
		select {
		case <-ctx.Done():
			return d.shutdown(&wg, cancelSends)
		case <-d.s.wake:
		case <-d.kick:
		case <-wait.C:
		case <-prune.C:
			d.prune(ctx)
		}
	}
}

func (d *Dispatcher) shutdown(wg *sync.WaitGroup, cancelSends context.CancelFunc) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d.opts.ShutdownGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		cancelSends()
		<-done
	}
	return nil
}

// schedule starts the sends that may start now and returns how long to
// sleep before looking again, if nothing wakes it first.
func (d *Dispatcher) schedule(ctx, sendCtx context.Context, wg *sync.WaitGroup) time.Duration {
	if ctx.Err() != nil {
		return d.opts.PollInterval
	}
	d.mu.Lock()
	for _, f := range d.finished {
		delete(d.inflight[f.hook], f.id)
		if len(d.inflight[f.hook]) == 0 {
			delete(d.inflight, f.hook)
		}
	}
	d.finished = d.finished[:0]
	d.mu.Unlock()
	hooks, err := d.s.queryHooks(ctx, "SELECT "+hookColumns+" FROM hooks WHERE enabled = 1 ORDER BY id")
	if err != nil {
		d.log.Error("dispatch: list hooks", "err", err)
		return d.opts.PollInterval
	}
	now := d.opts.Now()
	for _, h := range hooks {
		d.mu.Lock()
		busy := len(d.inflight[h.ID])
		free := d.opts.MaxInFlight - d.sending[h.ID]
		d.mu.Unlock()
		if free <= 0 {
			continue
		}
		// Ask for enough to skip the ones already in flight, which stay
		// pending in the database until their result is recorded.
		due, err := d.s.dueHeads(ctx, h.ID, now, free+busy)
		if err != nil {
			d.log.Error("dispatch: find due deliveries", "hook", h, "err", err)
			continue
		}
		for _, dl := range due {
			if free == 0 {
				break
			}
			d.mu.Lock()
			if d.inflight[h.ID] == nil {
				d.inflight[h.ID] = map[string]bool{}
			}
			started := !d.inflight[h.ID][dl.ID]
			d.inflight[h.ID][dl.ID] = true
			if started {
				d.sending[h.ID]++
			}
			d.mu.Unlock()
			if !started {
				continue
			}
			free--
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.deliver(sendCtx, h, dl)
			}()
		}
	}
	next := d.opts.PollInterval
	if t, ok, err := d.s.nextDue(ctx, now); err != nil {
		d.log.Error("dispatch: find next due delivery", "err", err)
	} else if ok {
		next = min(next, max(t.Sub(now), 0))
	}
	return next
}

func (d *Dispatcher) deliver(ctx context.Context, h Hook, dl Delivery) {
	defer func() {
		d.mu.Lock()
		d.finished = append(d.finished, finished{h.ID, dl.ID})
		d.mu.Unlock()
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}()
	r := d.sender.send(ctx, h, dl)
	d.mu.Lock()
	d.sending[h.ID]--
	if d.sending[h.ID] == 0 {
		delete(d.sending, h.ID)
	}
	d.mu.Unlock()
	select {
	case d.kick <- struct{}{}: // a request slot is free
	default:
	}
	if ctx.Err() != nil {
		// Cut off by shutdown: not the receiver's fault and not counted;
		// the delivery stays due and the next run sends it again.
		return
	}
	now := d.opts.Now()
	o := decide(d.opts.Retry, dl.Attempts+1, r, now)
	ok, err := d.rec.record(&recording{dl: dl, hookID: h.ID, r: r, o: o, now: now})
	if err != nil {
		d.log.Error("dispatch: record attempt", "delivery", dl.ID, "hook", h, "err", err)
		return
	}
	if !ok {
		return // the hook was removed meanwhile
	}
	d.latencyCount.Add(1)
	d.latencySum.Add(r.Latency.Microseconds())
	out := OutcomeFailed
	switch {
	case o.state == Delivered:
		out = OutcomeDelivered
	case o.gone:
		out = OutcomeGone
	case o.state == Dead:
		out = OutcomeDead
	}
	d.count(h.ID, out)
	if d.opts.OnAttempt != nil {
		d.opts.OnAttempt(AttemptReport{HookID: h.ID, Outcome: out, Status: r.Status, Latency: r.Latency})
	}
	switch {
	case o.state == Delivered:
		d.delivered.Add(1)
		d.log.Debug("delivered", "delivery", dl.ID, "hook", h, "event", dl.Event, "status", r.Status, "latency", r.Latency)
	case o.gone:
		d.gone.Add(1)
		d.dead.Add(1)
		d.log.Warn("hook disabled: receiver answered 410 Gone", "hook", h)
	case o.state == Dead:
		d.dead.Add(1)
		d.log.Warn("delivery dead", "delivery", dl.ID, "hook", h, "event", dl.Event, "reason", o.reason)
	default:
		d.failed.Add(1)
		d.log.Info("delivery failed, will retry", "delivery", dl.ID, "hook", h, "event", dl.Event,
			"attempt", dl.Attempts+1, "err", r.errText(), "next", o.next)
	}
}

func (d *Dispatcher) count(hookID int64, out Outcome) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.byHook[hookID]
	if c == nil {
		c = &HookCounts{}
		d.byHook[hookID] = c
	}
	switch out {
	case OutcomeDelivered:
		c.Delivered++
	case OutcomeFailed:
		c.Failed++
	case OutcomeDead:
		c.Dead++
	case OutcomeGone:
		c.Gone++
	}
}

func (d *Dispatcher) prune(ctx context.Context) {
	n, err := d.s.prune(ctx, d.opts.Now().Add(-d.opts.Retention))
	if err != nil {
		d.log.Error("dispatch: prune", "err", err)
	} else if n > 0 {
		d.log.Info("pruned old attempts", "count", n)
	}
}

// Test sends ev to h once, now, outside the outbox: nothing is stored and
// nothing retried. It sends even to a disabled hook.
func (d *Dispatcher) Test(ctx context.Context, h Hook, ev cdr.Event, enc Encoding) (AttemptResult, error) {
	body, ctype, name, err := enc.Encode(h, ev)
	if err != nil {
		return AttemptResult{}, fmt.Errorf("test %s: %w", h, err)
	}
	now := d.opts.Now()
	dl := Delivery{ID: newDeliveryID(now), HookID: h.ID, CallID: ev.CallID, Seq: ev.Seq, Event: name,
		Body: body, ContentType: ctype}
	r := d.sender.send(ctx, h, dl)
	if r.Err != nil && errors.Is(r.Err, context.Canceled) && ctx.Err() != nil {
		return r, fmt.Errorf("test %s: %w", h, ctx.Err())
	}
	return r, nil
}

// DispatchStats are running totals since NewDispatcher.
type DispatchStats struct {
	InFlight  int
	Delivered int64
	Failed    int64 // attempts that failed and will be retried
	Dead      int64 // deliveries given up, Gone included
	Gone      int64 // hooks disabled by a 410
	Attempts  int64
	// LatencySum over Attempts is the mean request latency.
	LatencySum time.Duration
	// ByHook splits the outcomes by hook id; Dead above counts Gone too,
	// here they are apart.
	ByHook map[int64]HookCounts
}

// Stats returns a snapshot of the dispatcher's counters.
func (d *Dispatcher) Stats() DispatchStats {
	d.mu.Lock()
	n := 0
	for _, m := range d.inflight {
		n += len(m)
	}
	n -= len(d.finished)
	byHook := make(map[int64]HookCounts, len(d.byHook))
	for id, c := range d.byHook {
		byHook[id] = *c
	}
	d.mu.Unlock()
	return DispatchStats{
		InFlight:   n,
		Delivered:  d.delivered.Load(),
		Failed:     d.failed.Load(),
		Dead:       d.dead.Load(),
		Gone:       d.gone.Load(),
		Attempts:   d.latencyCount.Load(),
		LatencySum: time.Duration(d.latencySum.Load()) * time.Microsecond,
		ByHook:     byHook,
	}
}
