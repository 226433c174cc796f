package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/internal/backoff"
)

// Forwarder publishes a listener's committed call events to the stream, in
// commit order, and marks each forwarded once the cluster acknowledged it.
// It takes the dispatcher's place in the pipeline (kanca run --nats): the
// PBX feeds the SQLite outbox as on a single machine, so an unreachable
// cluster slows nothing and loses nothing; the backlog drains, in order,
// when it is back.
type Forwarder struct {
	Store *hooks.Store
	Conn  *Conn
	// Keep is how long forwarded events stay in the local store (default
	// 1 h): enough to see what went out, not a second log.
	Keep   time.Duration
	Logger *slog.Logger

	forwarded atomic.Int64
	failing   atomic.Bool
}

// publishTimeout bounds a window's publishes: an acknowledgement not back
// by then is taken as not stored, and the event is published again (the
// stream drops the repeat if it was stored after all).
const publishTimeout = 5 * time.Second

// Run forwards until ctx ends. What is not acknowledged stays in the store
// for the next run.
func (f *Forwarder) Run(ctx context.Context) error {
	log := f.Logger
	if log == nil {
		log = slog.Default()
	}
	keep := f.Keep
	if keep <= 0 {
		keep = time.Hour
	}
	attempt := 0
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	f.prune(ctx, log, keep)
	var stream bool
	for ctx.Err() == nil {
		err := f.drain(ctx, &stream)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			if !f.failing.Swap(true) {
				log.Warn("cannot forward call events to NATS; they wait in the local store", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(backoff.Wait(100*time.Millisecond, 5*time.Second, 0.2, attempt, rand.Float64())):
			}
			attempt++
			continue
		}
		if f.failing.Swap(false) {
			log.Info("forwarding call events to NATS again")
		}
		attempt = 0
		select {
		case <-ctx.Done():
		case <-f.Store.Committed():
		case <-tick.C:
		case <-prune.C:
			f.prune(ctx, log, keep)
		}
	}
	return nil
}

// prune drops the events forwarded more than keep ago and the records of
// calls that ended before the retention: no dispatcher runs beside a
// forwarder to prune those.
func (f *Forwarder) prune(ctx context.Context, log *slog.Logger, keep time.Duration) {
	if _, err := f.Store.PruneForwarded(ctx, time.Now().Add(-keep)); err != nil {
		log.Error("prune forwarded events", "err", err)
	}
	n, err := f.Store.PruneCalls(ctx, time.Now().Add(-hooks.DefaultRetention))
	if err != nil {
		log.Error("prune the records of ended calls", "err", err)
	}
	if n > 0 {
		log.Info("pruned the records of old calls", "count", n)
	}
}

// drain publishes everything not yet acknowledged, a window at a time:
// a window's publishes are in flight together, but it holds at most one
// event per call, and the next window goes only once every event of this
// one is stored. So whatever fails and is published again, a call's
// later event never lands in the stream ahead of an earlier one; calls
// side by side may swap places, which nothing depends on.
func (f *Forwarder) drain(ctx context.Context, stream *bool) error {
	if !*stream {
		if _, err := f.Conn.Stream(ctx); err != nil {
			return err
		}
		*stream = true
	}
	for {
		batch, err := f.Store.Unforwarded(ctx, maxWindow)
		if err != nil || len(batch) == 0 {
			return err
		}
		for len(batch) > 0 {
			n := window(batch)
			done, err := f.publish(ctx, batch[:n])
			if done > 0 {
				if merr := f.Store.MarkForwarded(context.WithoutCancel(ctx), batch[done-1].N, time.Now()); merr != nil {
					return merr
				}
				f.forwarded.Add(int64(done))
			}
			if err != nil {
				return err
			}
			batch = batch[n:]
		}
	}
}

// maxWindow bounds the publishes in flight at once.
const maxWindow = 256

// window is how many of evs, from the first, hold no call twice.
func window(evs []hooks.Forwarded) int {
	seen := make(map[string]bool, len(evs))
	for i, ev := range evs {
		if seen[ev.CallID] {
			return i
		}
		seen[ev.CallID] = true
	}
	return len(evs)
}

// publish sends evs at once and waits for every acknowledgement; done is
// how many, from the first, the stream stored.
func (f *Forwarder) publish(ctx context.Context, evs []hooks.Forwarded) (done int, err error) {
	futures := make([]jetstream.PubAckFuture, len(evs))
	for i, ev := range evs {
		futures[i], err = f.Conn.JS.PublishAsync(Subject(Partition(ev.CallID)), ev.Event, jetstream.WithMsgID(ev.ID))
		if err != nil {
			futures = futures[:i]
			err = fmt.Errorf("publish event %s of call %s: %w", ev.ID, ev.CallID, err)
			break
		}
	}
	timeout := time.NewTimer(publishTimeout)
	defer timeout.Stop()
	stored := true
	for i, fu := range futures {
		select {
		case <-fu.Ok():
			if stored {
				done = i + 1
			}
		case perr := <-fu.Err():
			stored = false
			if err == nil {
				err = fmt.Errorf("publish event %s of call %s: %w", evs[i].ID, evs[i].CallID, perr)
			}
		case <-timeout.C:
			return done, errors.Join(err, fmt.Errorf("publish: no acknowledgement within %s", publishTimeout))
		case <-ctx.Done():
			return done, ctx.Err()
		}
	}
	return done, err
}

// Forwarded counts the events acknowledged since Run started.
func (f *Forwarder) Forwarded() int64 { return f.forwarded.Load() }
