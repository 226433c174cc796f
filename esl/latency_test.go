package esl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl/esltest"
)

// BenchmarkSourceLatency plays the FreeSWITCH recordings through the fake
// event socket at 20 calls/s, each call cloned with fresh uuids and sent
// with its recorded timing and its recorded disorder (the socket's order,
// not Event-Sequence order; one Event-Sequence numbering across all
// calls, as one FreeSWITCH would), and measures each event from the
// moment the socket is given it to the moment the Source hands over its
// tracker input: what the reorder buffer and decoding add. It prints the
// p50 and p99 in milliseconds.
//
//	go test ./esl -run '^$' -bench SourceLatency -benchtime 1x
func BenchmarkSourceLatency(b *testing.B) {
	const rate, calls = 20, 200
	plan := latencyPlan(b, rate, calls)
	for b.Loop() {
		// The baseline first, in the same run: the same socket read by a
		// bare client that decodes each event as it comes, with no reorder
		// buffer and no follower. What it shows at the tail is this machine
		// and the fake socket, not kanca's ordering.
		report(b, playTimed(b, plan, true), "bare-")
		report(b, playTimed(b, plan, false), "")
	}
}

func report(b *testing.B, lat []time.Duration, prefix string) {
	slices.Sort(lat)
	at := func(q float64) float64 {
		return float64(lat[min(int(q*float64(len(lat))), len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
	if prefix == "" {
		b.ReportMetric(float64(len(lat)), "inputs")
	}
}

type timedEvent struct {
	at  time.Duration // from the run's start
	raw []byte
	key string // "" when the event is no tracker input
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
var seqRE = regexp.MustCompile(`"Event-Sequence":"[0-9]+"`)

func inputKey(in cdr.Input) string {
	return fmt.Sprint(in.Channel.ID, "/", in.Kind, "/", in.Time.UnixMicro())
}

// latencyPlan clones the recordings into calls starting at rate per
// second, in the order the socket is to send them.
func latencyPlan(b *testing.B, rate float64, calls int) []timedEvent {
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "esl", "*", "events.ndjson"))
	if err != nil || len(dirs) == 0 {
		b.Fatalf("no recordings: %v", err)
	}
	type rec struct {
		events [][]byte
		core   string
		ts     []int64 // per event, monotone over arrival
		seq    []uint64
	}
	var recs []rec
	for _, path := range dirs {
		evs, err := esltest.LoadNDJSON(path)
		if err != nil {
			b.Fatal(err)
		}
		r := rec{}
		var last int64
		for _, raw := range evs {
			f, err := ParseJSON(raw)
			if err != nil {
				continue
			}
			seq, ok := f.Sequence()
			if !ok {
				continue
			}
			ts, _ := strconv.ParseInt(f["event-date-timestamp"], 10, 64)
			last = max(last, ts)
			if r.core == "" {
				r.core = f["core-uuid"]
			}
			r.events, r.ts, r.seq = append(r.events, raw), append(r.ts, last), append(r.seq, seq)
		}
		recs = append(recs, r)
	}
	type item struct {
		at     time.Duration
		call   int
		idx    int    // arrival order within the call
		seq    uint64 // recorded sequence, for the new numbering
		raw    []byte
		newSeq uint64
	}
	var items []*item
	for c := range calls {
		r := recs[c%len(recs)]
		start := time.Duration(float64(c) / rate * float64(time.Second))
		prefix := fmt.Sprintf("%08x", c)
		for i, raw := range r.events {
			cl := uuidRE.ReplaceAllFunc(raw, func(m []byte) []byte {
				if string(m) == r.core {
					return []byte("00000000-0000-4000-8000-000000000001")
				}
				return append([]byte(prefix), m[8:]...)
			})
			items = append(items, &item{at: start + time.Duration(r.ts[i]-r.ts[0])*time.Microsecond,
				call: c, idx: i, seq: r.seq[i], raw: cl})
		}
	}
	// One FreeSWITCH numbers events as it raises them.
	// Both orders are by time, then call, then within the call.
	inTime := func(its []*item, within func(*item) uint64) {
		sort.SliceStable(its, func(i, j int) bool {
			a, b := its[i], its[j]
			if a.at != b.at {
				return a.at < b.at
			}
			if a.call != b.call {
				return a.call < b.call
			}
			return within(a) < within(b)
		})
	}
	bySeq := slices.Clone(items)
	inTime(bySeq, func(it *item) uint64 { return it.seq })
	for n, it := range bySeq {
		it.newSeq = uint64(n + 1)
	}
	// The socket sends each call's events in their recorded order.
	inTime(items, func(it *item) uint64 { return uint64(it.idx) })
	out := make([]timedEvent, len(items))
	for i, it := range items {
		raw := seqRE.ReplaceAll(it.raw, []byte(`"Event-Sequence":"`+strconv.FormatUint(it.newSeq, 10)+`"`))
		out[i] = timedEvent{at: it.at, raw: raw}
		if in, ok, err := Decode(raw); err == nil && ok {
			out[i].key = inputKey(in)
		}
	}
	return out
}

// playTimed sends plan on its schedule to a Source (bare: a Conn whose
// events are decoded as they come) and returns the delay of every tracker
// input it handed over.
func playTimed(b *testing.B, plan []timedEvent, bare bool) []time.Duration {
	srv := esltest.NewServer(esltest.Options{})
	defer srv.Close()
	src, err := New(Config{Addr: srv.Addr, Password: "ClueCon", ProbeInterval: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	run := src.Run
	if bare {
		run = func(ctx context.Context, emit func(cdr.Input)) error { return readBare(ctx, srv.Addr, emit) }
	}
	var mu sync.Mutex
	sent := map[string][]time.Time{}
	var lat []time.Duration
	want := 0
	for _, e := range plan {
		if e.key != "" {
			want++
		}
	}
	got := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, func(in cdr.Input) {
			now := time.Now()
			k := inputKey(in)
			mu.Lock()
			if ts := sent[k]; len(ts) > 0 {
				lat = append(lat, now.Sub(ts[0]))
				sent[k] = ts[1:]
			}
			n := len(lat)
			mu.Unlock()
			if n == want {
				select {
				case got <- struct{}{}:
				default:
				}
			}
		})
	}()
	for srv.Listings() == 0 {
		select {
		case <-srv.Changed():
		case <-time.After(10 * time.Second):
			b.Fatal("the source did not connect")
		}
	}
	start := time.Now()
	for i := 0; i < len(plan); {
		if wait := plan[i].at - time.Since(start); wait > 0 {
			time.Sleep(wait)
		}
		j := i
		now := time.Now()
		var batch [][]byte
		mu.Lock()
		for ; j < len(plan) && plan[j].at <= now.Sub(start); j++ {
			if plan[j].key != "" {
				sent[plan[j].key] = append(sent[plan[j].key], now)
			}
			batch = append(batch, plan[j].raw)
		}
		mu.Unlock()
		srv.Play(batch...)
		i = j
	}
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		mu.Lock()
		b.Fatalf("only %d of %d inputs", len(lat), want)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	return lat
}

// readBare subscribes as the Source does, lists once (the fake socket
// sends events after a list), and decodes every event in arrival order.
func readBare(ctx context.Context, addr string, emit func(cdr.Input)) error {
	c, err := Dial(ctx, addr, "ClueCon", 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Subscribe(ctx, Subscription...); err != nil {
		return err
	}
	go func() { _, _ = c.API(ctx, "show channels as json") }()
	for {
		select {
		case <-ctx.Done():
			return nil
		case raw, ok := <-c.Events():
			if !ok {
				return c.Err()
			}
			if in, ok, err := Decode(raw); err == nil && ok {
				emit(in)
			}
		}
	}
}
