package examples_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
)

// Receiver is one place kanca delivers the corpus to: every public number
// of the corpus gets a hook pointing at it.
type Receiver struct {
	URL    string
	Format formats.Format
	Events []string // in the spellings the hook asks for; nil: all seven
	Secret string   // "": unsigned
}

// Kanca is kanca's own delivery path, the one `kanca run` uses behind its
// tracker: a hooks store in a temporary SQLite file, its outbox and its
// dispatcher, POSTing to the receivers with their hooks' Basic
// credentials and signatures.
type Kanca struct {
	Store *hooks.Store
	Retry hooks.RetryPolicy

	ctx      context.Context
	corpus   []Delivery          // in the order the tracker produced them
	byEvent  map[string]Delivery // corpus entries by call uuid and sequence number
	hookOf   map[int64]int       // hook id -> receiver index
	expected int                 // deliveries the corpus makes
	log      *lockedBuffer       // kanca's own logs, shown when a test fails

	// What the last run left, by delivery id.
	carried map[string]Delivery // the corpus entry it carried
	ofHook  map[string]int64
}

// NewKanca binds hooks for every public number of the corpus to each
// receiver, in a new store.
func NewKanca(t testing.TB, corpus []Delivery, receivers ...Receiver) *Kanca {
	t.Helper()
	ctx := context.Background()
	s, err := hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	k := &Kanca{Store: s, ctx: ctx, corpus: corpus, byEvent: map[string]Delivery{}, hookOf: map[int64]int{}, log: &lockedBuffer{}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kanca's log:\n%s", k.log.String())
		}
	})
	numbers := map[string]bool{}
	for _, d := range corpus {
		numbers[d.Event.Number] = true
		key := eventKey(d.UUID, d.Event.Seq)
		require.NotContains(t, k.byEvent, key, "sequence numbers are unique within a call")
		k.byEvent[key] = d
	}
	sorted := make([]string, 0, len(numbers))
	for n := range numbers {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for i, r := range receivers {
		for _, n := range sorted {
			h, err := s.AddHook(ctx, hooks.Hook{Number: n, URL: r.URL, Format: r.Format, Events: r.Events,
				User: hookUser, Password: hookPassword, Secret: r.Secret})
			require.NoError(t, err)
			k.hookOf[h.ID] = i
		}
	}
	k.expected = len(corpus) * len(receivers)
	// Short waits, so that a receiver failing is seen failing at once and
	// one recovering is delivered to again within the test.
	k.Retry = hooks.RetryPolicy{Initial: 50 * time.Millisecond, Factor: 2, Max: 200 * time.Millisecond, Attempts: 3}
	return k
}

func eventKey(call string, seq int) string { return fmt.Sprintf("%s#%d", call, seq) }

// Deliver runs a dispatcher, hands it the corpus through the outbox as the
// tracker produced it (each frame's events in one unit, as the running
// pipeline does), and returns when every delivery is delivered or dead.
func (k *Kanca) Deliver(t testing.TB) {
	t.Helper()
	k.run(t, func() {
		// In the reference PBX's zone, the bodies are the replay goldens.
		o := hooks.NewOutbox(k.Store, hooks.OutboxOptions{Encoding: hooks.Encoding{Location: turkey}})
		for i := 0; i < len(k.corpus); {
			var evs []cdr.Event
			frame := k.corpus[i].Frame
			for ; i < len(k.corpus) && k.corpus[i].Frame == frame; i++ {
				evs = append(evs, k.corpus[i].Event)
			}
			errs, err := o.Commit(k.ctx, []hooks.Unit{{Events: evs}})
			require.NoError(t, err)
			require.NoError(t, errs[0])
		}
	})
}

// Settle runs a dispatcher until nothing is pending or retrying: what a
// restarted kanca does with what it finds queued.
func (k *Kanca) Settle(t testing.TB) { t.Helper(); k.run(t, func() {}) }

func (k *Kanca) run(t testing.TB, feed func()) {
	t.Helper()
	o := hooks.DispatchOptions{Retry: k.Retry, PollInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(k.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	d := hooks.NewDispatcher(k.Store, o)
	ctx, stop := context.WithCancel(k.ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() {
		stop()
		require.NoError(t, <-done, "the dispatcher stops cleanly")
	}()
	feed()
	// The deadline only turns a hang into a failure.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		depth, err := k.Store.Depth(k.ctx)
		require.NoError(t, err)
		if depth[hooks.Pending]+depth[hooks.Retrying] == 0 && depth[hooks.Delivered]+depth[hooks.Dead] >= k.expected {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kanca did not settle: %v of %d deliveries", depth, k.expected)
		}
		time.Sleep(20 * time.Millisecond)
	}
	k.collect(t)
}

// collect reads back what kanca did, delivery by delivery.
func (k *Kanca) collect(t testing.TB) {
	t.Helper()
	ds, err := k.Store.Deliveries(k.ctx, hooks.Filter{Limit: 100 * k.expected})
	require.NoError(t, err)
	require.Len(t, ds, k.expected, "one delivery per corpus event and receiver")
	k.carried, k.ofHook = map[string]Delivery{}, map[string]int64{}
	var dead []string
	for _, d := range ds {
		if d.State != hooks.Delivered {
			dead = append(dead, fmt.Sprintf("%s %s of %s to hook %d: %s (%d attempts)", d.ID, d.Event, d.CallID, d.HookID, d.LastError, d.Attempts))
			continue
		}
		c, ok := k.byEvent[eventKey(d.CallID, d.Seq)]
		require.True(t, ok, "kanca delivered an event the corpus does not have: %s #%d", d.CallID, d.Seq)
		k.carried[d.ID], k.ofHook[d.ID] = c, d.HookID
	}
	require.Empty(t, dead, "every delivery is delivered:\n%s", strings.Join(dead, "\n"))
}

// Delivered returns, for receiver i, its deliveries by delivery id with
// the corpus entry each carried.
func (k *Kanca) Delivered(t testing.TB, i int) map[string]Delivery {
	t.Helper()
	out := map[string]Delivery{}
	for id, d := range k.carried {
		if k.hookOf[k.ofHook[id]] == i {
			out[id] = d
		}
	}
	require.Len(t, out, len(k.corpus), "receiver %d got every event once", i)
	return out
}

// Attempts returns the attempt log of a delivery.
func (k *Kanca) Attempts(t testing.TB, id string) []hooks.Attempt {
	t.Helper()
	_, atts, err := k.Store.Delivery(k.ctx, id)
	require.NoError(t, err)
	return atts
}
