package pipeline_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
)

// pacedSource emits its inputs one after another, pause apart, then
// waits for the end: a PBX whose events come at a moderate rate, each
// on its own.
type pacedSource struct {
	ins   []cdr.Input
	pause time.Duration
	sent  chan struct{}
}

func (s *pacedSource) Run(ctx context.Context, emit func(cdr.Input)) error {
	for _, in := range s.ins {
		emit(in)
		time.Sleep(s.pause)
	}
	close(s.sent)
	<-ctx.Done()
	return ctx.Err()
}

// groupsOutbox is the real outbox, keeping the units of each commit.
type groupsOutbox struct {
	*hooks.Outbox
	mu     sync.Mutex
	groups [][]hooks.Unit
}

func (o *groupsOutbox) Commit(ctx context.Context, units []hooks.Unit) ([]error, error) {
	errs, err := o.Outbox.Commit(ctx, units)
	if err == nil {
		o.mu.Lock()
		o.groups = append(o.groups, append([]hooks.Unit(nil), units...))
		o.mu.Unlock()
	}
	return errs, err
}

// nopDispatcher delivers nothing: the test reads what was committed.
type nopDispatcher struct{}

func (nopDispatcher) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Inputs that come a millisecond apart, each faster to commit than the
// next is to come, share transactions: while the committer is busy it
// waits out GroupWait for more. What is committed, and in what order,
// is exactly what the tracker made input by input, journal included.
func TestInputsShareCommits(t *testing.T) {
	frames := load(t, "s11-five-concurrent")
	var ins []cdr.Input
	for _, fr := range frames {
		in, ok, err := ari.Decode(fr)
		require.NoError(t, err)
		if ok {
			ins = append(ins, in)
		}
	}

	// What each input makes, fed to a tracker directly.
	ref := cdr.NewTracker(cdr.DefaultConfig())
	var want []hooks.Unit
	for _, in := range ins {
		u := hooks.Unit{}
		if ref.Needs(in) {
			u.Input = &in
		}
		u.Events = ref.Handle(in)
		u.Finished = ref.Finished(nil)
		if u.Input != nil || len(u.Events) > 0 || len(u.Finished) > 0 {
			want = append(want, u)
		}
	}
	require.Greater(t, len(want), 20)

	store, err := hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	out := &groupsOutbox{Outbox: hooks.NewOutbox(store, hooks.OutboxOptions{})}
	src := &pacedSource{ins: ins, pause: time.Millisecond, sent: make(chan struct{})}
	p := &pipeline.Pipeline{
		Source:     src,
		Tracker:    cdr.NewTracker(cdr.DefaultConfig()),
		Outbox:     out,
		Dispatcher: nopDispatcher{},
		Journal:    store,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		GroupWait:  200 * time.Millisecond,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	<-src.sent
	cancel()
	require.NoError(t, <-done)

	var got []hooks.Unit
	for _, g := range out.groups {
		got = append(got, g...)
	}
	assert.Equal(t, want, got, "the same units, in the same order")
	assert.Less(t, len(out.groups), len(want)/4, "%d units in %d transactions", len(want), len(out.groups))
	assert.EqualValues(t, len(out.groups), out.Stats().Batches)
}
