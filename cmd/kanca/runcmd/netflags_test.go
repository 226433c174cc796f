package runcmd

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/hooks"
)

// kanca run --hook-deny-net refuses a hook on a denied network at connect
// time: the call's deliveries fail with the reason, and nothing is sent.
func TestRunRefusesDeniedHook(t *testing.T) {
	frames, err := aritest.LoadNDJSON(filepath.Join("..", "..", "..", "testdata", "ari", "s01-answered-caller-hangs-up", "events.ndjson"))
	require.NoError(t, err)
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	ast.Play(frames...)
	var hits atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(recv.Close)

	db := filepath.Join(t.TempDir(), "kanca.db")
	store, err := hooks.Open(db)
	require.NoError(t, err)
	_, err = store.AddHook(context.Background(), hooks.Hook{Number: "908508850000", URL: recv.URL})
	require.NoError(t, err)

	t.Setenv("KANCA_ARI_PASSWORD", "kanca")
	cmd := New(&db)
	var stderr syncBuffer
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"--ari-url", ast.URL, "--ari-user", "kanca", "--hook-deny-net", "127.0.0.0/8,::1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() { cancel(); <-done }()

	var last string
	waitFor(t, "a refused attempt", func() bool {
		ds, err := store.Deliveries(context.Background(), hooks.Filter{Limit: 10})
		if err != nil || len(ds) == 0 || ds[len(ds)-1].Attempts == 0 {
			return false
		}
		last = ds[len(ds)-1].LastError
		return true
	})
	assert.Contains(t, last, "destination refused by the hook network policy: 127.0.0.1 is in denied network 127.0.0.0/8")
	assert.Zero(t, hits.Load())
	assert.True(t, strings.Contains(stderr.String(), "hook destinations limited"), stderr.String())
	require.NoError(t, store.Close())
}
