package hooks

import (
	"cmp"
	"container/heap"
	"slices"
	"time"
)

// queueWindow is how many waiting deliveries of one hook the dispatcher
// holds in memory. A hook whose receiver is down collects far more than
// that in the store; they are read back in enqueue order as the window
// drains, so memory stays bounded however long the outage.
const queueWindow = 1024

// entry is one waiting delivery the dispatcher holds.
type entry struct {
	Delivery
	due time.Time
}

// callQueue is one call's waiting deliveries to one hook, in sequence.
// Only its head may be sent: the call's order is the receiver's order.
type callQueue struct {
	hook  *hookQueue
	call  string
	items []*entry
	busy  bool // the head is being sent
	ready bool // in the hook's ready list
}

func (cq *callQueue) head() *entry {
	if len(cq.items) == 0 {
		return nil
	}
	return cq.items[0]
}

// hookQueue is the window of one hook's waiting deliveries.
type hookQueue struct {
	hook  Hook
	calls map[string]*callQueue
	byID  map[string]*entry
	ready []*callQueue // heads due now and not being sent, oldest first
	// complete: every waiting delivery of the hook is in the window, so a
	// new one may join it directly. Otherwise new ones wait in the store
	// until a read finds their call's head due.
	complete bool
	sending  int
	// limit is how many requests may be open now, between floor and the
	// hook's MaxInFlight (see succeeded and failed).
	limit    int
	lastRead time.Time // when the window was last read from the store
}

// StartInFlight and MinInFlight shape a hook's limit: where it starts, and
// how low failures take it (both capped by the hook's own MaxInFlight).
// A burst of calls to a receiver that answers in seconds sends its calls'
// first events in one round trip rather than three (each round trip
// doubles the limit), and a receiver that cannot take that many halves
// it on its first error or timeout.
const (
	StartInFlight = 64
	MinInFlight   = 4
)

func newHookQueue(h Hook) *hookQueue {
	hq := &hookQueue{calls: map[string]*callQueue{}, byID: map[string]*entry{}}
	hq.setHook(h)
	hq.limit = min(StartInFlight, h.MaxInFlight)
	return hq
}

// setHook takes the hook's current settings, keeping the limit within
// its new bounds.
func (hq *hookQueue) setHook(h Hook) {
	hq.hook = h
	hq.limit = min(max(hq.limit, hq.floor()), h.MaxInFlight)
}

func (hq *hookQueue) floor() int { return min(MinInFlight, hq.hook.MaxInFlight) }

// succeeded grows the limit by one for each request the receiver took
// while calls waited for a slot: a receiver that answers slowly but
// surely gets as many calls at once as it keeps taking, up to the hook's
// MaxInFlight. Per answer rather than per round trip, so that a receiver
// taking seconds per request reaches a burst's size in a few of them.
func (hq *hookQueue) succeeded() {
	if len(hq.ready) > 0 && hq.limit < hq.hook.MaxInFlight {
		hq.limit++
	}
}

// failed halves the limit on an error, a timeout or a refusal: a
// receiver that struggles gets fewer requests at once, never below the
// floor.
func (hq *hookQueue) failed() {
	hq.limit = max(hq.limit/2, hq.floor())
}

// add puts e in its call's queue, in (seq, n) order. It returns the call
// queue when e became its head.
func (hq *hookQueue) add(e *entry) (cq *callQueue, newHead bool) {
	cq = hq.calls[e.CallID]
	if cq == nil {
		cq = &callQueue{hook: hq, call: e.CallID}
		hq.calls[e.CallID] = cq
	}
	i, _ := slices.BinarySearchFunc(cq.items, e, func(a, b *entry) int {
		return cmp.Or(cmp.Compare(a.Seq, b.Seq), cmp.Compare(a.n, b.n))
	})
	if i == 0 && cq.busy {
		// The head is on the wire; nothing goes before it.
		i = 1
	}
	cq.items = slices.Insert(cq.items, i, e)
	hq.byID[e.ID] = e
	return cq, i == 0
}

// remove takes e out of the window.
func (hq *hookQueue) remove(e *entry) {
	cq := hq.calls[e.CallID]
	delete(hq.byID, e.ID)
	if cq == nil {
		return
	}
	if i := slices.Index(cq.items, e); i >= 0 {
		cq.items = slices.Delete(cq.items, i, i+1)
	}
	if len(cq.items) == 0 && !cq.busy {
		delete(hq.calls, e.CallID)
	}
}

// size is how many deliveries the window holds.
func (hq *hookQueue) size() int { return len(hq.byID) }

// due is one call queue whose head falls due at at.
type due struct {
	at time.Time
	cq *callQueue
}

// timers orders heads waiting for a retry by when they fall due. Entries
// go stale when their head moves on; popping checks them again.
type timers []due

func (t timers) Len() int           { return len(t) }
func (t timers) Less(i, j int) bool { return t[i].at.Before(t[j].at) }
func (t timers) Swap(i, j int)      { t[i], t[j] = t[j], t[i] }
func (t *timers) Push(x any)        { *t = append(*t, x.(due)) }
func (t *timers) Pop() any {
	old := *t
	d := old[len(old)-1]
	*t = old[:len(old)-1]
	return d
}

// schedule puts cq where its head belongs: the ready list when due now,
// the timers when later, nowhere when it is being sent or empty.
func schedule(cq *callQueue, now time.Time, tm *timers) {
	e := cq.head()
	if e == nil || cq.busy || cq.ready {
		return
	}
	if e.due.After(now) {
		heap.Push(tm, due{at: e.due, cq: cq})
		return
	}
	cq.ready = true
	cq.hook.ready = append(cq.hook.ready, cq)
}

// fire moves the heads that have fallen due by now to their ready lists
// and returns when the next one falls due (zero: none waits).
func fire(tm *timers, now time.Time) time.Time {
	for tm.Len() > 0 {
		d := (*tm)[0]
		if d.at.After(now) {
			return d.at
		}
		heap.Pop(tm)
		schedule(d.cq, now, tm)
	}
	return time.Time{}
}
