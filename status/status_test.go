package status

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/runlock"
)

// FromStore counts each hook's queue, held and dead deliveries and finds
// its last success and failure.
func TestFromStore(t *testing.T) {
	ctx := context.Background()
	s, err := hooks.Open(filepath.Join(t.TempDir(), "kanca.db"))
	require.NoError(t, err)
	defer s.Close()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) }))
	defer bad.Close()
	const number = "908508850000"
	good, err := s.AddHook(ctx, hooks.Hook{Number: number, URL: ok.URL})
	require.NoError(t, err)
	failing, err := s.AddHook(ctx, hooks.Hook{Number: number, URL: bad.URL})
	require.NoError(t, err)
	off, err := s.AddHook(ctx, hooks.Hook{Number: number, URL: ok.URL})
	require.NoError(t, err)
	require.NoError(t, s.SetEnabled(ctx, off.ID, false))

	ev := hooks.SampleEvent(cdr.CallInit, number, time.Now())
	errs, err := hooks.NewOutbox(s, hooks.OutboxOptions{}).Commit(ctx, []hooks.Unit{{Events: []cdr.Event{ev}}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	runCtx, cancel := context.WithCancel(ctx)
	d := hooks.NewDispatcher(s, hooks.DispatchOptions{Retry: hooks.RetryPolicy{Initial: time.Second, Factor: 1, Attempts: 1}})
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		depth, err := s.Depth(ctx)
		require.NoError(t, err)
		if depth[hooks.Delivered] == 1 && depth[hooks.Dead] == 1 {
			break
		}
		require.True(t, time.Now().Before(deadline), "deliveries did not settle: %v", depth)
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)

	rep, err := FromStore(ctx, s)
	require.NoError(t, err)
	assert.Equal(t, "database", rep.From)
	assert.Equal(t, s.Path(), rep.Database)
	assert.Empty(t, rep.Holder)
	assert.Empty(t, rep.Warnings)
	require.Len(t, rep.Hooks, 3)
	byID := map[int64]Hook{}
	for _, h := range rep.Hooks {
		byID[h.ID] = h
	}
	assert.NotNil(t, byID[good.ID].LastSuccess)
	assert.Nil(t, byID[good.ID].LastFailure)
	assert.Equal(t, 1, byID[failing.ID].Dead)
	require.NotNil(t, byID[failing.ID].LastFailure)
	assert.Contains(t, byID[failing.ID].LastError, "502")
	assert.Equal(t, 1, byID[off.ID].Held)
	assert.False(t, byID[off.ID].Enabled)

	lock, err := runlock.Acquire(s.Path())
	require.NoError(t, err)
	defer lock.Release()
	rep, err = FromStore(ctx, s)
	require.NoError(t, err)
	assert.Contains(t, rep.Holder, "kanca run, pid ")

	require.NoError(t, s.SetEnabled(ctx, good.ID, false))
	require.NoError(t, s.SetEnabled(ctx, failing.ID, false))
	rep, err = FromStore(ctx, s)
	require.NoError(t, err)
	assert.Equal(t, []string{NoEnabledHook}, rep.Warnings)
}
