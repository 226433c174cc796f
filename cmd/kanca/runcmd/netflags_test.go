package runcmd

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/hooks"
)

func TestNetFlagsFromEnvironmentAndFlags(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Setenv("KANCA_HOOK_ALLOW_NET", "10.0.0.0/8, 192.168.1.7")
	t.Setenv("KANCA_HOOK_DENY_NET", "")
	var nf netFlags
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	nf.register(fs)
	require.NoError(t, fs.Parse(nil))
	p, err := nf.policy(log)
	require.NoError(t, err)
	assert.Equal(t, "allow 10.0.0.0/8,192.168.1.7/32", p.String(), "from the environment")
	require.NoError(t, fs.Parse([]string{"--hook-deny-net", "10.9.0.0/16,10.8.0.1"}))
	p, err = nf.policy(log)
	require.NoError(t, err)
	assert.Equal(t, "allow 10.0.0.0/8,192.168.1.7/32; deny 10.9.0.0/16,10.8.0.1/32", p.String(), "a flag beside the environment")

	var bad netFlags
	bad.deny = []string{"localhost"}
	_, err = bad.policy(log)
	require.Error(t, err)
	assert.Equal(t, `--hook-allow-net/--hook-deny-net: hook network deny list: "localhost" is not a CIDR prefix (10.0.0.0/8) or an IP address`, err.Error())
}

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
