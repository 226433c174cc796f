package hooks

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanca/kanca/cdr"
)

// DispatchOptions tune the dispatcher; zero values take the defaults.
type DispatchOptions struct {
	Retry RetryPolicy // zero: DefaultRetryPolicy
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
	// Retention is how long attempts, delivered deliveries and the
	// records of ended calls are kept (default DefaultRetention);
	// PruneInterval how often they are pruned (1 h).
	Retention     time.Duration
	PruneInterval time.Duration
	// DeadRetention is how long dead and held deliveries are kept
	// untouched before they expire (default DefaultDeadRetention; below
	// zero: forever).
	DeadRetention time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
	// OnAttempt, if set, is called after each attempt is recorded, from
	// the goroutine that records them: it must be quick and must not wait
	// for the dispatcher. Requests cut off by shutdown are not attempts.
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
//
// Run holds each hook's waiting deliveries in memory, a window of them
// per hook: the outbox hands new ones over as it commits them, and the
// store is read only to fill a window that could not take everything,
// and once per PollInterval for what other processes changed (a retry
// from the command line, a hook enabled). A call's next delivery is sent
// as soon as the previous one is answered; the attempt is recorded
// meanwhile, in groups, so the disk does not set the pace of a call.
type Dispatcher struct {
	s      *Store
	opts   DispatchOptions
	sender *sender
	rec    *recorder // Run's: set before its workers start
	log    *slog.Logger
	// receivers logs each hook's receiver failing and answering again.
	receivers *Receivers

	mu     sync.Mutex
	byHook map[int64]*HookCounts

	inflight                      atomic.Int64 // sent or being sent, not yet recorded
	delivered, failed, dead, gone atomic.Int64
	latencyCount, latencySum      atomic.Int64 // sum in microseconds
}

// NewDispatcher returns a dispatcher for s's outbox.
func NewDispatcher(s *Store, o DispatchOptions) *Dispatcher {
	if o.Retry == (RetryPolicy{}) {
		o.Retry = DefaultRetryPolicy
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
		o.Retention = DefaultRetention
	}
	if o.DeadRetention == 0 {
		o.DeadRetention = DefaultDeadRetention
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
		s:         s,
		opts:      o,
		sender:    newSender(o.ConnectTimeout, o.Now, o.NetPolicy),
		log:       o.Logger,
		receivers: NewReceivers(o.Logger),
		byHook:    map[int64]*HookCounts{},
	}
}

// refillEvery is how often, at most, the window of a hook with more
// waiting than it holds is read again from the store.
const refillEvery = 10 * time.Millisecond

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
	l := newLoop(d, sendCtx)
	d.rec = newRecorder(d.s, func(recs []*recording) {
		d.recorded(recs)
		l.recorded <- recs
	})
	l.recorderDone = make(chan struct{})
	go func() {
		defer close(l.recorderDone)
		d.rec.run(context.WithoutCancel(ctx))
	}()
	d.s.attach(true)
	defer d.s.attach(false)
	// What was enqueued before attaching is never handed over: only a
	// read finds it.
	last, err := d.s.lastEnqueued(ctx)
	if err != nil {
		close(d.rec.in)
		<-l.recorderDone
		return fmt.Errorf("dispatch: %w", err)
	}
	l.handed = last

	d.prune(ctx)
	l.sync(ctx)
	prune := time.NewTicker(d.opts.PruneInterval)
	defer prune.Stop()
	poll := time.NewTicker(d.opts.PollInterval)
	defer poll.Stop()
	wait := time.NewTimer(0)
	defer wait.Stop()
	for {
		now := d.opts.Now()
		if l.absorb() {
			l.sync(ctx)
		}
		l.refill(ctx, now)
		at := fire(&l.timers, now) // retries now due join the ready lists
		l.start(now)
		next := d.opts.PollInterval
		if !at.IsZero() {
			next = min(next, max(at.Sub(now), 0))
		}
		if l.refilling {
			next = min(next, refillEvery)
		}
		wait.Reset(next)
		select {
		case <-ctx.Done():
			return l.shutdown(cancelSends)
		case <-d.s.wake:
		case a := <-l.answers:
			l.answered(a)
		case recs := <-l.recorded:
			l.done(recs)
		case <-wait.C:
		case <-poll.C:
			l.poll(ctx)
		case <-prune.C:
			d.prune(ctx)
		}
		l.drain()
	}
}

func newLoop(d *Dispatcher, sendCtx context.Context) *loop {
	return &loop{
		d:         d,
		sendCtx:   sendCtx,
		hooks:     map[int64]*hookQueue{},
		recording: map[string]int{},
		finished:  map[string]int64{},
		taken:     map[int64]int64{},
		gone:      map[int64]string{},
		answers:   make(chan answer, 256),
		recorded:  make(chan []*recording, 16),
	}
}

// loop is Run's state, touched by Run's goroutine alone.
type loop struct {
	d       *Dispatcher
	sendCtx context.Context
	wg      sync.WaitGroup

	hooks map[int64]*hookQueue
	order []*hookQueue // by hook id
	// recording counts, per delivery, answers not yet recorded: until
	// they are, the store still has the delivery waiting as it was, and
	// reading it back must not send it again.
	recording map[string]int
	// finished holds deliveries read from the store, sent and done before
	// the outbox's handoff of them arrived (the read and the handoff race),
	// so that the handoff does not send them again; handed is the enqueue
	// order of the last handoff taken.
	finished map[string]int64
	handed   int64
	// taken counts, per hook, answers that took a delivery out of the
	// window (delivered, dead) and whose record did not fail; the
	// recorder counts those it committed.
	taken map[int64]int64
	// gone holds hooks that answered 410, with the delivery whose record
	// disables them: until it is recorded, the store says enabled.
	gone   map[int64]string
	timers timers
	// refilling: some hook's window is short of what waits in the store.
	refilling bool
	version   int64 // the store's changes as of the last sync

	answers      chan answer
	recorded     chan []*recording
	recorderDone chan struct{}
}

// answer is what a sender reports back as soon as a request is over.
type answer struct {
	cq  *callQueue
	e   *entry
	o   outcome
	cut bool // cut off by shutdown: send again
}

// absorb takes what the outbox handed over and reports whether the store
// must be read as well.
func (l *loop) absorb() bool {
	ds, resync := l.d.s.takeFresh()
	now := l.d.opts.Now()
	for i := range ds {
		hq := l.hooks[ds[i].HookID]
		if hq == nil {
			resync = true // a hook this loop has not read yet
			continue
		}
		if _, ok := l.finished[ds[i].ID]; ok || hq.byID[ds[i].ID] != nil || l.recording[ds[i].ID] > 0 {
			continue // read from the store before it was handed over
		}
		if !hq.complete || hq.size() >= queueWindow {
			l.incomplete(hq, now)
			continue
		}
		e := &entry{Delivery: ds[i], due: ds[i].NextAttempt}
		if cq, head := hq.add(e); head {
			schedule(cq, now, &l.timers)
		}
	}
	if len(ds) > 0 {
		// Handoffs come in enqueue order: none to come is at or below this.
		l.handed = max(l.handed, ds[len(ds)-1].n)
		for id, n := range l.finished {
			if n <= l.handed {
				delete(l.finished, id)
			}
		}
	}
	return resync
}

// drain takes every answer and record already reported, so that one pass
// of the loop starts all the sends they free.
func (l *loop) drain() {
	for {
		select {
		case a := <-l.answers:
			l.answered(a)
		case recs := <-l.recorded:
			l.done(recs)
		default:
			return
		}
	}
}

// poll reads the store again if another process changed it: a window
// that holds all its hook has waiting learns of nothing else there.
func (l *loop) poll(ctx context.Context) {
	v, err := l.d.s.changes(ctx)
	if err != nil {
		l.d.log.Error("dispatch: look for changes", "err", err)
		return
	}
	if v != l.version {
		l.sync(ctx)
	}
}

// sync reads the enabled hooks and fills every window from the store.
func (l *loop) sync(ctx context.Context) {
	d := l.d
	v, err := d.s.changes(ctx)
	if err != nil {
		d.log.Error("dispatch: look for changes", "err", err)
		return
	}
	l.version = v // read first: a change during the sync is seen next poll
	hs, err := d.s.queryHooks(ctx, "SELECT "+hookColumns+" FROM hooks WHERE enabled = 1 ORDER BY id")
	if err != nil {
		d.log.Error("dispatch: list hooks", "err", err)
		return
	}
	enabled := map[int64]bool{}
	order := make([]*hookQueue, 0, len(hs))
	for _, h := range hs {
		if _, ok := l.gone[h.ID]; ok {
			continue
		}
		enabled[h.ID] = true
		hq := l.hooks[h.ID]
		if hq == nil {
			hq = newHookQueue(h)
			l.hooks[h.ID] = hq
		}
		hq.setHook(h)
		order = append(order, hq)
	}
	for id, hq := range l.hooks {
		if !enabled[id] {
			l.drop(hq)
		}
	}
	l.order = order
	for _, hq := range l.order {
		l.fill(ctx, hq)
	}
}

// drop forgets a hook's window: it was disabled or removed.
func (l *loop) drop(hq *hookQueue) {
	for _, cq := range hq.calls {
		cq.items = nil
	}
	hq.calls, hq.byID, hq.ready = map[string]*callQueue{}, map[string]*entry{}, nil
	delete(l.hooks, hq.hook.ID)
	l.order = slices.DeleteFunc(l.order, func(o *hookQueue) bool { return o == hq })
}

// refill reads again the windows that could not take all that waits,
// once they have room, at most every refillEvery.
func (l *loop) refill(ctx context.Context, now time.Time) {
	if !l.refilling {
		return
	}
	l.refilling = false
	for _, hq := range l.order {
		if hq.complete {
			continue
		}
		if hq.size() < queueWindow/2 && now.Sub(hq.lastRead) >= refillEvery {
			l.fill(ctx, hq)
		}
		if !hq.complete {
			l.refilling = true
		}
	}
}

// fill reads the deliveries of hq that may be sent now (due, and first
// of their call) into the window, and finds whether the window then
// holds everything the hook has waiting.
func (l *loop) fill(ctx context.Context, hq *hookQueue) {
	d := l.d
	now := d.opts.Now()
	hq.lastRead = now
	// Heads already held or answered come back too: ask for that many
	// more than there is room for.
	limit := max(queueWindow-hq.size(), 0) + len(hq.calls) + max(l.unrecorded(hq), 0)
	heads, err := d.s.dueHeads(ctx, hq.hook.ID, now, limit)
	if err != nil {
		d.log.Error("dispatch: read waiting deliveries", "hook", hq.hook, "err", err)
		l.incomplete(hq, now)
		return
	}
	var calls []string
	for _, e := range heads {
		if l.recording[e.ID] > 0 {
			continue // answered; the store has not caught up
		}
		if old := hq.byID[e.ID]; old != nil {
			cq := hq.calls[old.CallID]
			if cq.head() == old && !cq.busy && !old.due.Equal(e.due) {
				// Requeued by someone else (deliveries retry).
				old.Attempts, old.State, old.NextAttempt, old.due = e.Attempts, e.State, e.NextAttempt, e.due
				schedule(cq, now, &l.timers)
			}
			continue
		}
		calls = append(calls, e.CallID)
	}
	// A call is taken whole, so that its next delivery goes as soon as the
	// previous one is answered, not once its record is read back. Calls
	// are read a part at a time, half as many as there is room for
	// deliveries (most calls have several), so that the bodies of calls
	// that will not fit are not read at all.
	for len(calls) > 0 && hq.size() < queueWindow {
		part := calls[:min(len(calls), max((queueWindow-hq.size())/2, 16))]
		calls = calls[len(part):]
		rows, err := d.s.waitingOfCalls(ctx, hq.hook.ID, part)
		if err != nil {
			d.log.Error("dispatch: read waiting deliveries", "hook", hq.hook, "err", err)
			l.incomplete(hq, now)
			return
		}
		for _, e := range rows {
			if l.recording[e.ID] > 0 || hq.byID[e.ID] != nil {
				continue
			}
			if hq.size() >= queueWindow {
				break
			}
			if cq, head := hq.add(e); head {
				schedule(cq, now, &l.timers)
			}
		}
	}
	if len(heads) == limit || hq.size() >= queueWindow {
		// More may be due than were read: the window is short for now.
		l.incomplete(hq, now)
		return
	}
	// Whether the window holds all the hook has waiting is asked with the
	// writers held off: every delivery committed so far has then been
	// handed over (the outbox hands over under the lock), and the records
	// committed are counted exactly. The store then has waiting the
	// window, the answers whose record is not committed, and whatever the
	// window lacks.
	d.s.wmu.lock(true) // briefly: a count of at most a window
	resync := l.absorb()
	expect := hq.size() + l.unrecorded(hq)
	waiting, err := d.s.waitingUpTo(ctx, hq.hook.ID, expect+1)
	d.s.wmu.unlock()
	if resync {
		d.s.notify()
	}
	if err != nil {
		d.log.Error("dispatch: count waiting deliveries", "hook", hq.hook, "err", err)
		l.incomplete(hq, now)
		return
	}
	if waiting != expect {
		l.incomplete(hq, now)
		return
	}
	hq.complete = true
}

// unrecorded is how many answers took deliveries out of hq's window
// whose records are not committed yet: the store still has them waiting.
func (l *loop) unrecorded(hq *hookQueue) int {
	return int(l.taken[hq.hook.ID] - l.d.rec.committedFor(hq.hook.ID))
}

// incomplete marks hq's window as short of what waits in the store: new
// deliveries stay there until a read takes them, in call order. Calls
// parked until a retry leave the window, so that they cannot fill it
// while others could be sent; the read brings them back when due.
func (l *loop) incomplete(hq *hookQueue, now time.Time) {
	l.refilling = true
	if !hq.complete {
		return
	}
	hq.complete = false
	for _, cq := range hq.calls {
		l.park(cq, now)
	}
}

// park takes cq out of an incomplete window when its head waits for a
// retry.
func (l *loop) park(cq *callQueue, now time.Time) {
	hq := cq.hook
	if hq.complete || cq.busy || cq.head() == nil || !cq.head().due.After(now) {
		return
	}
	for _, e := range cq.items {
		delete(hq.byID, e.ID)
	}
	cq.items = nil
	delete(hq.calls, cq.call)
}

// start sends every ready head its hook has room for.
func (l *loop) start(now time.Time) {
	for _, hq := range l.order {
		for hq.sending < hq.limit && len(hq.ready) > 0 {
			cq := hq.ready[0]
			hq.ready[0] = nil
			hq.ready = hq.ready[1:]
			cq.ready = false
			e := cq.head()
			if e == nil || cq.busy {
				continue
			}
			if e.due.After(now) {
				schedule(cq, now, &l.timers)
				continue
			}
			cq.busy = true
			hq.sending++
			l.d.inflight.Add(1)
			l.wg.Add(1)
			go l.send(hq.hook, cq, e)
		}
	}
}

// answered moves a call on once its head's request is over.
func (l *loop) answered(a answer) {
	cq, e := a.cq, a.e
	hq := cq.hook
	hq.sending--
	cq.busy = false
	now := l.d.opts.Now()
	switch {
	case a.cut:
		if e.due.Before(now) {
			e.due = now
		}
	case a.o.gone:
		l.recording[e.ID]++
		l.gone[hq.hook.ID] = e.ID
		if l.hooks[hq.hook.ID] == hq {
			l.drop(hq)
		}
		return
	case a.o.state == Retrying:
		hq.failed()
		l.recording[e.ID]++
		e.Attempts++
		e.State, e.NextAttempt, e.due = Retrying, a.o.next, a.o.next
		l.park(cq, now)
	default: // delivered, or dead: the call's next may go
		if a.o.state == Delivered {
			hq.succeeded()
		} else {
			hq.failed()
		}
		l.recording[e.ID]++
		l.taken[hq.hook.ID]++
		hq.remove(e)
		if e.n > l.handed {
			l.finished[e.ID] = e.n
		}
	}
	schedule(cq, now, &l.timers)
}

// done notes that answers were recorded (or failed to be).
func (l *loop) done(recs []*recording) {
	for _, rec := range recs {
		id := rec.dl.ID
		if l.recording[id]--; l.recording[id] <= 0 {
			delete(l.recording, id)
		}
		if rec.err != nil {
			// The store still has the delivery as it was, and the window
			// no longer does: read it back.
			if takes(rec.o) {
				l.taken[rec.hook.ID]--
			}
			l.d.s.notify()
		}
		if by, ok := l.gone[rec.hook.ID]; ok && by == id {
			delete(l.gone, rec.hook.ID)
		}
	}
}

// shutdown waits up to the grace for the requests in flight, then cuts
// them off, and returns once every answer is recorded.
func (l *loop) shutdown(cancelSends context.CancelFunc) error {
	sent := make(chan struct{})
	go func() { l.wg.Wait(); close(sent) }()
	t := time.NewTimer(l.d.opts.ShutdownGrace)
	defer t.Stop()
	for sent != nil {
		select {
		case <-sent:
			sent = nil
		case <-t.C:
			cancelSends()
		case <-l.answers:
		case <-l.recorded:
		}
	}
	// No sender is left to hand the recorder anything.
	close(l.d.rec.in)
	for {
		select {
		case <-l.recorderDone:
			return nil
		case <-l.recorded:
		}
	}
}

// send POSTs e, reports the answer to the loop at once, then records the
// attempt.
func (l *loop) send(h Hook, cq *callQueue, e *entry) {
	d := l.d
	defer l.wg.Done()
	defer d.inflight.Add(-1)
	ctx := l.sendCtx
	dl := e.Delivery
	r := d.sender.send(ctx, h, dl)
	if ctx.Err() != nil {
		// Cut off by shutdown: not the receiver's fault and not counted;
		// the delivery stays due and the next run sends it again.
		l.answers <- answer{cq: cq, e: e, cut: true}
		return
	}
	now := d.opts.Now()
	o := decide(d.opts.Retry, dl.Attempts+1, r, now)
	l.answers <- answer{cq: cq, e: e, o: o}
	d.inflight.Add(1) // until recorded
	d.rec.add(&recording{dl: dl, hook: h, r: r, o: o, now: now})
}

// recorded counts and logs what the recorder committed.
func (d *Dispatcher) recorded(recs []*recording) {
	for _, rec := range recs {
		d.inflight.Add(-1)
		dl, h, r, o := rec.dl, rec.hook, rec.r, rec.o
		if rec.err != nil {
			d.log.Error("dispatch: record attempt", "delivery", dl.ID, "hook", h, "err", rec.err)
			continue
		}
		if !rec.ok {
			continue // the hook was removed meanwhile
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
			d.receivers.Delivered(h)
		case o.gone:
			d.gone.Add(1)
			d.dead.Add(1)
			d.log.Warn("hook disabled: receiver answered 410 Gone", "hook", h)
		case o.state == Dead:
			d.dead.Add(1)
			d.log.Warn("delivery dead", "delivery", dl.ID, "hook", h, "event", dl.Event, "reason", o.reason)
		default:
			d.failed.Add(1)
			d.receivers.Failed(h, dl.ID, dl.Event, dl.Attempts+1, r.errText(), o.next)
		}
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

// DefaultRetention is how long attempts, delivered deliveries and the
// records of ended calls are kept.
const DefaultRetention = 30 * 24 * time.Hour

// DefaultDeadRetention is how long dead and held deliveries are kept.
const DefaultDeadRetention = 30 * 24 * time.Hour

func (d *Dispatcher) prune(ctx context.Context) {
	now := d.opts.Now()
	var deadBefore time.Time
	if d.opts.DeadRetention > 0 {
		deadBefore = now.Add(-d.opts.DeadRetention)
	}
	n, calls, expired, err := d.s.prune(ctx, now.Add(-d.opts.Retention), deadBefore)
	if err != nil {
		d.log.Error("dispatch: prune", "err", err)
	}
	if n > 0 {
		d.log.Info("pruned old attempts", "count", n)
	}
	if calls > 0 {
		d.log.Info("pruned the records of old calls", "count", calls)
	}
	if expired > 0 {
		d.log.Warn("expired dead and held deliveries", "count", expired, "older_than", d.opts.DeadRetention)
	}
}

// Test sends ev to h once, now, outside the outbox: nothing is stored and
// nothing retried. It sends even to a disabled hook.
func (d *Dispatcher) Test(ctx context.Context, h Hook, ev cdr.Event, enc Encoding) (AttemptResult, error) {
	return (&Sender{d.sender}).Test(ctx, h, ev, enc)
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
	n := int(d.inflight.Load())
	d.mu.Lock()
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
