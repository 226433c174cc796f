package hooks

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

const pbx = "908508850000"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kanca.db")
	s, err := Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s, path
}

func addHook(t *testing.T, s *Store, h Hook) Hook {
	t.Helper()
	if h.Number == "" {
		h.Number = pbx
	}
	h, err := s.AddHook(context.Background(), h)
	require.NoError(t, err)
	return h
}

// event is a routing-free event: enough for everything but the CDR tests.
func event(call string, seq int, typ cdr.EventType) cdr.Event {
	return cdr.Event{
		Type: typ, CallID: call, Seq: seq, Number: pbx,
		Caller: "905320000000", Callee: pbx, Direction: cdr.Inbound,
		Time:        time.Date(2025, 7, 1, 18, 0, 51, 0, time.UTC),
		Destination: "101",
	}
}

func enqueue(t *testing.T, s *Store, evs ...cdr.Event) {
	t.Helper()
	commit(t, NewOutbox(s, OutboxOptions{}), evs...)
}

func enqueueAt(t *testing.T, s *Store, now time.Time, evs ...cdr.Event) {
	t.Helper()
	commit(t, NewOutbox(s, OutboxOptions{Now: func() time.Time { return now }}), evs...)
}

// commit stores evs as one unit, as the pipeline's committer does with
// the events of one input.
func commit(t testing.TB, o *Outbox, evs ...cdr.Event) {
	t.Helper()
	errs, err := o.Commit(context.Background(), []Unit{{Events: evs}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
}

// run runs a dispatcher until the test ends; stop ends it early and
// returns Run's error.
func run(t *testing.T, s *Store, o DispatchOptions) (d *Dispatcher, stop func() error) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	d = NewDispatcher(s, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return d, stop
}

// waitFor waits for cond; the deadline only turns a hang into a failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func deliveries(t *testing.T, s *Store, f Filter) []Delivery {
	t.Helper()
	f.Limit = 10000
	ds, err := s.Deliveries(context.Background(), f)
	require.NoError(t, err)
	return ds
}

func allIn(t *testing.T, s *Store, st State) func() bool {
	return func() bool {
		for _, d := range deliveries(t, s, Filter{}) {
			if d.State != st {
				return false
			}
		}
		return true
	}
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
