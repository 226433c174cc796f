package pipeline_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
)

// refusingOutbox is the real outbox behind a switch that makes every
// transaction fail, as a full disk or a database another process keeps
// locked does.
type refusingOutbox struct {
	*hooks.Outbox
	refuse  atomic.Bool
	refused atomic.Int64
}

var errDiskFull = errors.New("database or disk is full")

func (o *refusingOutbox) Commit(ctx context.Context, units []hooks.Unit) ([]error, error) {
	if o.refuse.Load() {
		o.refused.Add(1)
		return nil, errDiskFull
	}
	return o.Outbox.Commit(ctx, units)
}

// While the store refuses every commit, kanca holds what it took and
// retries; it stops reading the PBX once its queue is full instead of
// dropping anything. When the store accepts again, every call's events
// arrive, in order, exactly as if nothing had happened.
func TestStoreRefusalHoldsEventsAndRecovers(t *testing.T) {
	frames := load(t, "s11-five-concurrent")
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	recv := newReceiver(t)
	store := newStore(t, recv.URL, frames)

	// The run that never fails, for reference.
	ref := aritest.NewServer(aritest.Options{})
	t.Cleanup(ref.Close)
	refRecv := newReceiver(t)
	refStore := newStore(t, refRecv.URL, frames)
	ref.Play(frames...)
	s := startSession(t, ref, refStore)
	s.waitInputs(t, decodable(t, frames))
	waitDelivered(t, refStore)
	s.stop(t, ref)
	all, err := refStore.Deliveries(context.Background(), hooks.Filter{})
	require.NoError(t, err)
	want, _ := bodies(t, refRecv.wait(t, len(all)))

	out := &refusingOutbox{Outbox: hooks.NewOutbox(store, hooks.OutboxOptions{})}
	out.refuse.Store(true)
	ast.Play(frames...)
	sess := startSession(t, ast, store, func(p *pipeline.Pipeline) {
		p.Outbox = out
		p.StoreRetry = 10 * time.Millisecond
		p.MaxQueued = 16
	})
	// Refused, retried, and reading stops: the queue fills and Asterisk's
	// frames wait in the socket.
	deadline := time.Now().Add(10 * time.Second)
	for out.refused.Load() < 20 || sess.p.Stats().Queued < 16 {
		require.True(t, time.Now().Before(deadline), "refused %d times, %d queued", out.refused.Load(), sess.p.Stats().Queued)
		time.Sleep(5 * time.Millisecond)
	}
	st := sess.p.Stats()
	assert.Less(t, st.Inputs, decodable(t, frames), "kanca stopped reading while it could not store")
	assert.Zero(t, st.Events)
	assert.Positive(t, st.StoreErrors)
	assert.Empty(t, recv.snapshot())

	out.refuse.Store(false)
	sess.waitInputs(t, decodable(t, frames))
	waitDelivered(t, store)
	sess.stop(t, ast)
	all, err = store.Deliveries(context.Background(), hooks.Filter{})
	require.NoError(t, err)
	got, _ := bodies(t, recv.wait(t, len(all)))
	assert.Equal(t, want, got)
	assert.Zero(t, sess.p.Stats().Dropped)
}

func (r *receiver) snapshot() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}
