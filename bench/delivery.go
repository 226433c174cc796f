package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
)

// DeliveryStats is the delivery stage alone: the events of cloned calls,
// made by the tracker beforehand, committed to the outbox as fast as it
// takes them while the dispatcher sends them, each attempt recorded. It
// is the part of kanca the plain-POST baseline does the same work as:
// every delivery durable before it is sent, and its result durable after.
type DeliveryStats struct {
	Deliveries int
	Hooks      int
	Duplicates int
	Elapsed    time.Duration // first commit to last delivery received
	PerSec     float64
	// TrackPerSec is how many deliveries' worth of ARI frames one
	// goroutine decodes and tracks per second, with no I/O at all: the
	// ceiling that reading the PBX puts on the end-to-end rate.
	TrackPerSec float64
}

// unitsPerCommit matches the pipeline's largest transaction.
const unitsPerCommit = 512

func deliveryStage(ctx context.Context, o Options, tps []*template, n int) (DeliveryStats, error) {
	var st DeliveryStats
	t0 := time.Now()
	units, err := trackedUnits(tps, n)
	if err != nil {
		return st, err
	}
	events := 0
	for _, u := range units {
		events += len(u.Events)
	}
	st.TrackPerSec = float64(events) / time.Since(t0).Seconds()
	dir, err := os.MkdirTemp("", "kanca-bench-delivery-")
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(dir)
	recv, err := startReceiver(o.SlowDelay, 0)
	if err != nil {
		return st, err
	}
	defer recv.close()
	store, err := hooks.Open(filepath.Join(dir, "kanca.db"))
	if err != nil {
		return st, err
	}
	defer store.Close()
	for _, num := range numbers(tps) {
		if _, err := store.AddHook(ctx, hooks.Hook{Number: num, URL: recv.url + "/fast", Format: formats.JSON,
			Events: hooks.AllEvents(), Enabled: true}); err != nil {
			return st, err
		}
		st.Hooks++
	}
	outbox := hooks.NewOutbox(store, hooks.OutboxOptions{})
	disp := hooks.NewDispatcher(store, hooks.DispatchOptions{Logger: o.Logger, ShutdownGrace: 200 * time.Millisecond})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- disp.Run(runCtx) }()
	defer func() {
		stop()
		<-done
	}()

	start := time.Now()
	for i := 0; i < len(units); i += unitsPerCommit {
		errs, err := outbox.Commit(ctx, units[i:min(i+unitsPerCommit, len(units))])
		if err != nil {
			return st, fmt.Errorf("commit: %w", err)
		}
		for _, err := range errs {
			if err != nil {
				return st, fmt.Errorf("commit: %w", err)
			}
		}
	}
	st.Deliveries = int(outbox.Stats().Deliveries)
	deadline := time.NewTimer(o.Timeout)
	defer deadline.Stop()
	for recv.fast.Load() < int64(st.Deliveries) {
		select {
		case <-recv.arrived:
		case <-deadline.C:
			return st, fmt.Errorf("only %d of %d deliveries arrived in time", recv.fast.Load(), st.Deliveries)
		case <-ctx.Done():
			return st, ctx.Err()
		}
	}
	dups, last, _ := recv.snapshot()
	st.Duplicates = dups
	st.Elapsed = last.Sub(start)
	if s := st.Elapsed.Seconds(); s > 0 {
		st.PerSec = float64(st.Deliveries) / s
	}
	return st, nil
}

// trackedUnits runs cloned calls through the decoder and the tracker
// until they have made at least n events, one outbox unit per input that
// made any, as the pipeline commits them.
func trackedUnits(tps []*template, n int) ([]hooks.Unit, error) {
	var g generator
	p := newPicker(tps)
	tr := cdr.NewTracker(cdr.DefaultConfig())
	base := time.Now()
	var units []hooks.Unit
	for i, events := 0, 0; events < n; i++ {
		tp := p.next()
		c := g.clone(tp, base.Add(time.Duration(i)*time.Second))
		for j := range tp.frames {
			in, ok, err := ari.Decode(c.render(j))
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			if evs := tr.Handle(in); len(evs) > 0 {
				units = append(units, hooks.Unit{Events: evs})
				events += len(evs)
			}
		}
	}
	return units, nil
}
