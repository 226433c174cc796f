package esl

import (
	"bufio"
	"bytes"
	"container/heap"
	"io"
	"time"
)

// DefaultWindow is how many events Order holds back. FreeSWITCH numbers
// events when it creates them and the socket displaces channel events by
// up to about ten; eslgo's one goroutine per event displaces them more.
const DefaultWindow = 64

// Order puts events back in Event-Sequence order. It holds an event only
// behind a gap: the one that follows the last released (sequence + 1)
// goes at once, with whatever it unblocks. Otherwise it holds up to
// window events and releases the lowest sequence whenever it holds more;
// Release lets the live path bound how long an event waits behind a gap.
// In the recordings every event that arrives out of order belongs to
// another channel than the one before it, and was stamped in the same
// microsecond: the socket swaps events FreeSWITCH raised together, so a
// real gap fills within a few milliseconds. Gaps that never fill are the
// events the subscription leaves out. An event that arrives
// after a later one was released is released at once: late is better than
// lost. A new Core-UUID (FreeSWITCH restarted, sequences start over)
// releases everything held first. Not safe for concurrent use.
type Order[T any] struct {
	window int
	h      orderHeap[T]
	n      uint64 // arrival counter, keeps equal sequences stable
	last   uint64 // highest sequence released
	core   string
}

// NewOrder returns an Order holding at most window events (DefaultWindow
// when window < 1).
func NewOrder[T any](window int) *Order[T] {
	if window < 1 {
		window = DefaultWindow
	}
	return &Order[T]{window: window}
}

// Len is the number of events held.
func (o *Order[T]) Len() int { return len(o.h) }

// Push adds an event with its Core-UUID, Event-Sequence and arrival time,
// and returns the events it releases, in order.
func (o *Order[T]) Push(core string, seq uint64, at time.Time, v T) []T {
	var out []T
	if core != "" && o.core != "" && core != o.core {
		out = o.Flush()
		o.last = 0
	}
	if core != "" {
		o.core = core
	}
	if seq <= o.last {
		return append(out, v)
	}
	o.n++
	heap.Push(&o.h, orderItem[T]{seq: seq, n: o.n, at: at, v: v})
	for len(o.h) > o.window || (len(o.h) > 0 && o.h[0].seq == o.last+1 && o.last > 0) {
		out = append(out, o.pop())
	}
	return out
}

// Release returns every event that arrived before t, with every event of
// a lower sequence, in order.
func (o *Order[T]) Release(before time.Time) []T {
	var out []T
	for {
		due := false
		for _, it := range o.h {
			if it.at.Before(before) {
				due = true
				break
			}
		}
		if !due {
			return out
		}
		out = append(out, o.pop())
	}
}

// Held calls f with every event held, in no particular order.
func (o *Order[T]) Held(f func(T)) {
	for _, it := range o.h {
		f(it.v)
	}
}

// Flush returns every event held, in order.
func (o *Order[T]) Flush() []T {
	var out []T
	for len(o.h) > 0 {
		out = append(out, o.pop())
	}
	return out
}

func (o *Order[T]) pop() T {
	it := heap.Pop(&o.h).(orderItem[T])
	if it.seq > o.last {
		o.last = it.seq
	}
	return it.v
}

type orderItem[T any] struct {
	seq, n uint64
	at     time.Time
	v      T
}

type orderHeap[T any] []orderItem[T]

func (h orderHeap[T]) Len() int { return len(h) }
func (h orderHeap[T]) Less(i, j int) bool {
	if h[i].seq != h[j].seq {
		return h[i].seq < h[j].seq
	}
	return h[i].n < h[j].n
}
func (h orderHeap[T]) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *orderHeap[T]) Push(x any)   { *h = append(*h, x.(orderItem[T])) }
func (h *orderHeap[T]) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// Reorder reads recorded events, one JSON object a line as "event json"
// delivers them, and returns them one a line in Event-Sequence order,
// within DefaultWindow events. Lines that are not events with a sequence
// pass through where they stand. It is replay's Reorder for FreeSWITCH.
func Reorder(r io.Reader) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(reorder(r, pw))
	}()
	return pr
}

func reorder(r io.Reader, w io.Writer) error {
	bw := bufio.NewWriter(w)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	o := NewOrder[[]byte](DefaultWindow)
	write := func(lines [][]byte) error {
		for _, l := range lines {
			bw.Write(l)
			if err := bw.WriteByte('\n'); err != nil {
				return err
			}
		}
		return nil
	}
	for sc.Scan() {
		line := bytes.Clone(sc.Bytes())
		var rel [][]byte
		if f, err := ParseJSON(line); err != nil {
			rel = append(o.Flush(), line)
		} else if seq, ok := f.Sequence(); !ok {
			rel = append(o.Flush(), line)
		} else {
			rel = o.Push(f["core-uuid"], seq, time.Time{}, line)
		}
		if err := write(rel); err != nil {
			return err
		}
	}
	if err := write(o.Flush()); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return sc.Err()
}
