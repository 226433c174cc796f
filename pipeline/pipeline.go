// Package pipeline runs kanca's one-way flow in a process: a PBX source
// feeds the call tracker, whose events go into the durable outbox, from
// which the dispatcher delivers them.
package pipeline

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

// Source is a PBX connection: it calls emit for every event, in the order
// the PBX sent them, from one goroutine, until ctx ends.
type Source interface {
	Run(ctx context.Context, emit func(cdr.Input)) error
}

// Outbox takes call events durably: when Enqueue returns nil they are
// committed.
type Outbox interface {
	Enqueue(ctx context.Context, evs []cdr.Event) error
}

// Dispatcher delivers what the outbox holds until ctx ends, then finishes
// the requests in flight.
type Dispatcher interface {
	Run(ctx context.Context) error
}

// Pipeline is source -> tracker -> outbox -> dispatcher.
type Pipeline struct {
	Source     Source
	Tracker    *cdr.Tracker
	Outbox     Outbox
	Dispatcher Dispatcher
	Logger     *slog.Logger
	// ExpireEvery is how often calls past the maximum duration are ended
	// when the PBX is quiet (default 1 min).
	ExpireEvery time.Duration
	// StoreRetry is the wait between tries when the outbox cannot take
	// events (disk full, database locked): the source waits too, so
	// nothing read is dropped (default 1 s).
	StoreRetry time.Duration

	mu       sync.Mutex // the tracker is fed by the source and the expiry tick
	inputs   atomic.Int64
	events   atomic.Int64
	storeErr atomic.Int64
}

// Stats counts what went through the pipeline.
type Stats struct {
	Inputs      int64 // PBX events fed to the tracker
	Events      int64 // call events committed to the outbox
	StoreErrors int64 // failed outbox commits (each retried)
	LiveCalls   int
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	live := p.Tracker.Calls()
	p.mu.Unlock()
	return Stats{Inputs: p.inputs.Load(), Events: p.events.Load(), StoreErrors: p.storeErr.Load(), LiveCalls: live}
}

// Run runs until ctx ends or the source fails for good. On the way out it
// stops taking PBX events first, then lets the dispatcher finish the
// requests in flight; what is not delivered stays queued for the next run.
func (p *Pipeline) Run(ctx context.Context) error {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	every := p.ExpireEvery
	if every <= 0 {
		every = time.Minute
	}

	dctx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDispatch()
	dispatched := make(chan error, 1)
	go func() { dispatched <- p.Dispatcher.Run(dctx) }()

	sctx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case now := <-t.C:
				p.mu.Lock()
				evs := p.Tracker.Expire(now, nil)
				p.mu.Unlock()
				p.store(sctx, log, evs)
			}
		}
	}()

	srcErr := p.Source.Run(sctx, func(in cdr.Input) {
		p.inputs.Add(1)
		p.mu.Lock()
		evs := p.Tracker.Handle(in)
		p.mu.Unlock()
		p.store(sctx, log, evs)
	})
	stopSource()
	wg.Wait()

	stopDispatch()
	dispErr := <-dispatched
	if srcErr != nil && !errors.Is(srcErr, context.Canceled) {
		return fmt.Errorf("pbx source: %w", srcErr)
	}
	if dispErr != nil && !errors.Is(dispErr, context.Canceled) {
		return fmt.Errorf("dispatcher: %w", dispErr)
	}
	return nil
}

// store commits evs, retrying while the store refuses them: the source
// blocks meanwhile, which is what keeps a full disk from losing calls.
func (p *Pipeline) store(ctx context.Context, log *slog.Logger, evs []cdr.Event) {
	if len(evs) == 0 {
		return
	}
	wait := p.StoreRetry
	if wait <= 0 {
		wait = time.Second
	}
	// Events the tracker produced were taken from the PBX: commit them even
	// while shutting down.
	commit := context.WithoutCancel(ctx)
	for {
		err := p.Outbox.Enqueue(commit, evs)
		if err == nil {
			p.events.Add(int64(len(evs)))
			return
		}
		p.storeErr.Add(1)
		if ctx.Err() != nil {
			// Shutting down: these events were never committed. The calls
			// they belong to are still live on the PBX or ended now; the
			// next start reconciles them.
			log.Error("events not stored at shutdown", "events", len(evs), "call", evs[0].CallID, "err", err)
			return
		}
		log.Error("cannot store call events; holding the PBX stream until the store accepts them", "events", len(evs), "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}
