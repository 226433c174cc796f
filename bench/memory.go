package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
)

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// residentBytes is the process's resident set (VmRSS), or what the Go
// runtime holds from the OS where that is not available.
func residentBytes() int64 {
	if f, err := os.Open("/proc/self/status"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.Sys)
}

// liveUntil sends a clone's frames up to its first call_hangup: the
// call is set up, ringing or talking.
func liveUntil(c *clone) int { return c.tp.liveEnd }

// trackerMemory is kanca's own state per live call: n calls' setup frames
// decoded and fed to a tracker, nothing else running in between.
func trackerMemory(tps []*template, n int) (float64, error) {
	calls := plan(tps, n)
	var g generator
	base := time.Now()
	tr := cdr.NewTracker(cdr.DefaultConfig())
	before := heapInUse()
	for i, tp := range calls {
		c := g.clone(tp, base.Add(time.Duration(i)*time.Millisecond))
		for j := range tp.liveEnd {
			in, ok, err := ari.Decode(c.render(j))
			if err != nil {
				return 0, err
			}
			if ok {
				tr.Handle(in)
			}
		}
	}
	after := heapInUse()
	if got, want := tr.Calls(), countCalls(calls); got != want {
		return 0, fmt.Errorf("tracker holds %d calls, want %d live", got, want)
	}
	runtime.KeepAlive(tr)
	return (float64(after) - float64(before)) / float64(countCalls(calls)), nil
}

// processMemory starts n calls through the whole pipeline, measures the
// heap with all of them live, then ends them and waits for every delivery.
func processMemory(ctx context.Context, o Options, tps []*template, m *MemStats) error {
	calls := plan(tps, m.Calls)
	ncalls := countCalls(calls)
	tr := newTracking(ncalls)
	r, err := newRig(ctx, o, tps, false, 0, tr.onSend)
	if err != nil {
		return err
	}
	defer r.close()
	var expected int64
	for _, tp := range calls {
		expected += int64(tp.total)
	}
	wait := func(cond func() bool, what string) error {
		deadline := time.NewTimer(o.Timeout)
		defer deadline.Stop()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for !cond() {
			select {
			case <-tick.C:
			case <-deadline.C:
				return errors.New(what)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}

	m.HeapBefore = heapInUse()
	p := &producer{ast: r.ast, tr: tr, base: time.Now(), speed: o.Speedup, until: liveUntil}
	clones, err := p.send(ctx, calls)
	if err != nil {
		return err
	}
	if err := wait(func() bool { return r.ast.Pos() == p.played && r.p.Stats().LiveCalls >= ncalls },
		fmt.Sprintf("kanca did not take %d live calls in time", ncalls)); err != nil {
		return err
	}
	// Let the setup events' deliveries drain, so the heap holds calls, not
	// requests in flight.
	if err := wait(func() bool { return r.recv.fast.Load() >= r.outbox.Stats().Deliveries },
		"setup events were not delivered in time"); err != nil {
		return err
	}
	m.HeapAfter = heapInUse()
	m.RSS = residentBytes()
	m.ProcessPerCall = (float64(m.HeapAfter) - float64(m.HeapBefore)) / float64(ncalls)

	// End them: the rest of every clone's frames.
	p.until = func(c *clone) int { return len(c.tp.frames) }
	if err := p.resume(ctx, clones); err != nil {
		return err
	}
	if err := wait(func() bool { return r.recv.fast.Load() >= expected },
		fmt.Sprintf("only %d of %d deliveries after ending the live calls", r.recv.fast.Load(), expected)); err != nil {
		return err
	}
	m.Delivered = true
	return r.stop()
}
