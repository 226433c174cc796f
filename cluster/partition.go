package cluster

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanca/kanca/hooks"
)

// partition is one leased partition on its worker: the reader that takes
// its events in stream order, the per hook and call queues, and the
// floor below which every event is done.
type partition struct {
	w   *Worker
	p   int
	rev atomic.Uint64 // the lease entry's revision
	// leaseMu orders renewals and the release: a renewal racing the
	// release's delete would leave the entry to expire instead.
	leaseMu  sync.Mutex
	released bool // under leaseMu
	// validUntil (unix ns) is when this worker must stop sending for the
	// partition unless the lease was renewed: ahead of the entry's
	// expiry in the cluster, so two workers never send a call at once.
	validUntil atomic.Int64

	ctx    context.Context // ends when the partition is lost or given back
	cancel context.CancelFunc
	// sendCtx ends requests in flight: at once when the lease is lost,
	// after the grace when it is given back.
	sendCtx    context.Context
	cancelSend context.CancelFunc
	stopping   atomic.Bool // no new request starts
	ended      atomic.Bool // stop was called
	sends      sync.WaitGroup

	// send is deliver; a test stands in for it.
	send func(*item) bool

	mu      sync.Mutex
	cond    *sync.Cond
	seqs    []uint64        // read and not yet done, in stream order
	pending map[uint64]int  // deliveries outstanding per stream sequence
	queues  map[qkey]*queue // per hook and call
	checkTo uint64          // events up to here may have been handled by a previous owner
	floor   uint64          // every event up to here is done
	purged  atomic.Uint64
}

type qkey struct {
	hook int64
	call string
}

// queue is one call's deliveries to one hook, sent one after another.
type queue struct {
	items []*item
}

type item struct {
	seq   uint64
	rec   Record
	retry int // the retry this is, 0 for the event's first pass
}

// maxOutstanding bounds the events a partition holds in memory; beyond it
// the reader waits. A hook that stays slow that long holds its partition's
// other hooks back from then on: a bound the memory needs.
const maxOutstanding = 20000

func (w *Worker) start(ctx context.Context, i int, rev uint64) *partition {
	p := &partition{w: w, p: i, pending: map[uint64]int{}, queues: map[qkey]*queue{}}
	p.cond = sync.NewCond(&p.mu)
	p.send = p.deliver
	p.rev.Store(rev)
	p.validUntil.Store(time.Now().Add(w.opts.LeaseTTL * 3 / 4).UnixNano())
	p.ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.sendCtx, p.cancelSend = context.WithCancel(context.WithoutCancel(ctx))
	last, err := w.stream.GetLastMsgForSubject(ctx, Subject(i))
	switch {
	case err == nil:
		p.checkTo = last.Sequence
	case errors.Is(err, jetstream.ErrMsgNotFound):
	default:
		w.log.Warn("take partition", "partition", i, "err", err)
		_ = w.leases.Delete(ctx, leaseKey(i), jetstream.LastRevision(rev))
		return nil
	}
	w.mu.Lock()
	w.parts[i] = p
	w.mu.Unlock()
	w.log.Debug("took partition", "partition", i)
	go p.read()
	go p.purger()
	return p
}

func (p *partition) running() bool { return !p.stopping.Load() }

// renew keeps the lease; false when it is lost (expired and taken, or the
// cluster unreachable past the lease).
func (p *partition) renew(ctx context.Context) bool {
	p.leaseMu.Lock()
	defer p.leaseMu.Unlock()
	if p.released {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, p.w.opts.LeaseTTL/4)
	defer cancel()
	rev, err := p.w.leases.Update(rctx, leaseKey(p.p), []byte(p.w.opts.ID), p.rev.Load())
	if err != nil {
		if time.Now().UnixNano() > p.validUntil.Load() {
			p.w.log.Warn("partition lease lost", "partition", p.p, "err", err)
			return false
		}
		return true // try again next tick, while the lease still holds
	}
	p.rev.Store(rev)
	p.validUntil.Store(time.Now().Add(p.w.opts.LeaseTTL * 3 / 4).UnixNano())
	return true
}

// stop ends the partition. Given back (graceful), it starts no new
// request, lets those in flight finish within the grace, and releases the
// lease for another worker; lost, it cuts them off at once (the new owner
// sends them again, with the same delivery ids).
func (w *Worker) stop(p *partition, graceful bool) {
	if p.ended.Swap(true) {
		return
	}
	p.stopping.Store(true)
	p.cancel()
	// The reader is not waited for: it may be inside the client's own
	// resubscription, which nothing stops for up to 10 s on a cluster
	// that hangs, and the partition must be let go within its lease.
	// Once this section under p.mu is past, register sees ended and
	// queues nothing more, so the sends waited for below are all there
	// will be.
	p.mu.Lock()
	p.cond.Broadcast()
	p.mu.Unlock()
	if !graceful {
		p.cancelSend()
	}
	done := make(chan struct{})
	go func() { p.sends.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.opts.ShutdownGrace):
		p.cancelSend()
		<-done
	}
	p.cancelSend()
	if graceful {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p.purge(ctx)
		p.leaseMu.Lock()
		p.released = true
		if err := w.leases.Delete(ctx, leaseKey(p.p), jetstream.LastRevision(p.rev.Load())); err != nil {
			w.log.Debug("give partition back", "partition", p.p, "err", err)
		}
		p.leaseMu.Unlock()
		cancel()
	}
	w.mu.Lock()
	delete(w.parts, p.p)
	w.mu.Unlock()
	w.log.Debug("left partition", "partition", p.p, "graceful", graceful)
}

// read takes the partition's events in stream order from the oldest one
// not yet purged.
func (p *partition) read() {
	w := p.w
	for p.ctx.Err() == nil {
		cons, err := w.stream.OrderedConsumer(p.ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{Subject(p.p)}})
		if err != nil {
			if p.ctx.Err() == nil {
				w.log.Warn("read partition", "partition", p.p, "err", err)
				time.Sleep(time.Second)
			}
			continue
		}
		// A short expiry and heartbeat: a pull lost while the stream moves
		// (a leader change, a server back) is noticed in seconds, not in
		// the client's default half-minute.
		it, err := cons.Messages(jetstream.PullExpiry(2*time.Second), jetstream.PullHeartbeat(time.Second))
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		stop := context.AfterFunc(p.ctx, it.Stop)
		for {
			m, err := it.Next()
			if err != nil {
				break
			}
			if !p.take(m) {
				break
			}
		}
		stop()
		it.Stop()
		// An ordered consumer resumes where it was, but ours must not
		// skip or repeat: once broken, leave the partition to be taken
		// again from its floor.
		if p.ctx.Err() == nil {
			w.log.Warn("partition reader stopped; giving it back", "partition", p.p)
			go w.stop(p, true)
		}
		return
	}
}

// take turns one stream message into deliveries; false when the
// partition stops meanwhile.
func (p *partition) take(m jetstream.Msg) bool {
	w := p.w
	meta, err := m.Metadata()
	if err != nil {
		w.log.Error("stream message without metadata", "err", err)
		return true
	}
	seq := meta.Sequence.Stream
	p.mu.Lock()
	for len(p.seqs) >= maxOutstanding && p.ctx.Err() == nil {
		p.cond.Wait()
	}
	p.mu.Unlock()
	if p.ctx.Err() != nil {
		return false
	}
	ev, err := decodeEvent(m.Data())
	if err != nil {
		w.log.Error("event in the stream does not decode; skipped", "seq", seq, "err", err)
		p.register(seq, nil)
		return true
	}
	h := m.Headers()
	eventID := h.Get(headerEventID)
	if eventID == "" {
		eventID = h.Get(jetstream.MsgIDHeader)
	}
	retry, _ := strconv.Atoi(h.Get(headerRetry))
	var targets []hooks.Hook
	if id, err := strconv.ParseInt(h.Get(headerHook), 10, 64); err == nil {
		if hk, ok := w.hook(id); ok {
			targets = []hooks.Hook{hk}
		}
	} else {
		w.mu.Lock()
		targets = hooks.Targets(w.byNumber, ev)
		w.mu.Unlock()
	}
	now := time.Now()
	var items []*item
	for _, hk := range targets {
		id := hooks.DeliveryID(eventID, hk.ID)
		var rec Record
		known := false
		if retry > 0 || seq <= p.checkTo {
			r, err := w.dlog.Get(p.ctx, id)
			for err != nil && !errors.Is(err, hooks.ErrNotFound) && p.ctx.Err() == nil {
				w.log.Warn("read delivery log", "delivery", id, "err", err)
				time.Sleep(200 * time.Millisecond)
				r, err = w.dlog.Get(p.ctx, id)
			}
			if p.ctx.Err() != nil {
				return false
			}
			if err == nil {
				rec, known = r, true
			}
		}
		if known && done(rec, retry) {
			continue
		}
		if !known {
			body, ctype, name, err := w.opts.Encoding.Encode(hk, ev)
			if err != nil {
				w.log.Error("event does not encode for hook; skipped", "hook", hk, "call", ev.CallID, "err", err)
				continue
			}
			rec = Record{Delivery: hooks.Delivery{ID: id, HookID: hk.ID, CallID: ev.CallID, Seq: ev.Seq, Event: name,
				ContentType: ctype, State: hooks.Pending, NextAttempt: now, Created: now, Updated: now},
				Body: body, EventID: eventID, EventJSON: append([]byte(nil), m.Data()...), Retries: retry}
			rec.Delivery.Body = body
		}
		items = append(items, &item{seq: seq, rec: rec, retry: retry})
	}
	p.register(seq, items)
	return true
}

// done reports whether a logged delivery needs nothing more for this
// pass of its event.
func done(r Record, retry int) bool {
	if retry > 0 {
		return r.RetryDone >= retry
	}
	if r.Retries > 0 {
		return true // a retry's own message sends it
	}
	switch r.State {
	case hooks.Delivered, hooks.Dead, hooks.Held:
		return true
	}
	return false
}

// register queues an event's deliveries behind their calls' earlier ones.
func (p *partition) register(seq uint64, items []*item) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended.Load() { // stop began: its wait for the sends may be under way
		return
	}
	p.seqs = append(p.seqs, seq)
	p.pending[seq] = len(items)
	for _, it := range items {
		k := qkey{it.rec.HookID, it.rec.CallID}
		q := p.queues[k]
		if q == nil {
			q = &queue{}
			p.queues[k] = q
		}
		q.items = append(q.items, it)
		if len(q.items) == 1 {
			p.sends.Add(1)
			go p.run(k, q)
		}
	}
	p.advance()
}

// advance moves the floor over the events that are done. p.mu is held.
func (p *partition) advance() {
	n := 0
	for n < len(p.seqs) && p.pending[p.seqs[n]] == 0 {
		delete(p.pending, p.seqs[n])
		p.floor = p.seqs[n]
		n++
	}
	if n > 0 {
		p.seqs = append(p.seqs[:0], p.seqs[n:]...)
		p.cond.Broadcast()
	}
}

// purge drops from the stream the events every hook has.
func (p *partition) purge(ctx context.Context) {
	p.mu.Lock()
	floor := p.floor
	p.mu.Unlock()
	if floor <= p.purged.Load() {
		return
	}
	err := p.w.stream.Purge(ctx, jetstream.WithPurgeSubject(Subject(p.p)), jetstream.WithPurgeSequence(floor+1))
	if err != nil {
		if ctx.Err() == nil {
			p.w.log.Debug("purge done events", "partition", p.p, "err", err)
		}
		return
	}
	p.purged.Store(floor)
}

// run sends a queue's deliveries in order, each until it is answered or
// given up, then leaves; register starts it again for the next. The
// queue leaves the map in the step that empties it: left there empty a
// moment, register would start a second run beside this one, and both
// would send the next delivery.
func (p *partition) run(k qkey, q *queue) {
	defer p.sends.Done()
	p.mu.Lock()
	for len(q.items) > 0 {
		it := q.items[0]
		p.mu.Unlock()
		if !p.send(it) {
			return // stopped: the next owner goes on from the log
		}
		p.mu.Lock()
		q.items = q.items[1:]
		p.pending[it.seq]--
		p.advance()
	}
	delete(p.queues, k)
	p.mu.Unlock()
}

// deliver sends one delivery until it is delivered, dead or held; false
// when the partition stopped first.
func (p *partition) deliver(it *item) bool {
	w := p.w
	r := &it.rec
	for {
		if wait := time.Until(r.NextAttempt); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return false
			case <-t.C:
			}
		}
		for time.Now().UnixNano() > p.validUntil.Load() {
			// The lease is not known to hold: another worker may have
			// the call by now.
			select {
			case <-p.ctx.Done():
				return false
			case <-time.After(50 * time.Millisecond):
			}
		}
		if p.stopping.Load() {
			return false
		}
		h, ok := w.hook(r.HookID)
		if !ok {
			return true // removed: nothing can send it any more
		}
		now := time.Now()
		if !h.Enabled {
			r.State, r.Updated = hooks.Held, now
			return p.record(it)
		}
		slot := w.slot(h)
		select {
		case slot <- struct{}{}:
		case <-p.ctx.Done():
			return false
		}
		res := w.sender.Send(p.sendCtx, h, r.Delivery)
		<-slot
		if p.sendCtx.Err() != nil {
			return false // cut off: not the receiver's fault, sent again by the next owner
		}
		now = time.Now()
		d := w.opts.Retry.Decide(r.Attempts+1, res, now)
		r.Attempts++
		r.Tries = append(r.Tries, hooks.Attempt{At: now, Status: res.Status, Latency: res.Latency,
			Response: res.Response, Error: res.ErrText()})
		r.State, r.NextAttempt, r.LastStatus, r.LastError, r.Updated = d.State, d.Next, res.Status, res.ErrText(), now
		if d.State == hooks.Dead && d.Reason != "" {
			r.LastError = d.Reason
		}
		switch {
		case d.State == hooks.Delivered:
			w.delivered.Add(1)
			w.receivers.Delivered(h)
		case d.State == hooks.Dead:
			w.dead.Add(1)
			w.log.Warn("delivery dead", "delivery", r.ID, "hook", h, "event", r.Event, "reason", d.Reason)
		default:
			w.failed.Add(1)
			w.receivers.Failed(h, r.ID, r.Event, r.Attempts, res.ErrText(), d.Next)
		}
		if d.Gone {
			if err := w.hooks.disable(p.ctx, h.ID, d.Reason); err != nil {
				w.log.Error("disable hook after 410", "hook", h, "err", err)
			}
		}
		if d.State != hooks.Retrying && it.retry > 0 {
			r.RetryDone = it.retry
		}
		if !p.record(it) {
			return false
		}
		if w.opts.OnAttempt != nil {
			w.opts.OnAttempt(*r)
		}
		if d.State != hooks.Retrying {
			return true
		}
	}
}

// record writes the delivery to the log, trying again while the cluster
// is away: a delivery whose answer is not logged would be sent again by
// the next owner.
func (p *partition) record(it *item) bool {
	for {
		ctx, cancel := context.WithTimeout(p.sendCtx, 5*time.Second)
		err := p.w.dlog.put(ctx, it.rec)
		cancel()
		if err == nil {
			return true
		}
		p.w.log.Warn("log delivery", "delivery", it.rec.ID, "err", err)
		select {
		case <-p.sendCtx.Done(): // a graceful stop keeps trying through its grace
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// purger drops done events from the stream while the partition is quiet
// too, so that the next owner has little to read again.
func (p *partition) purger() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			p.purge(p.ctx)
		}
	}
}
