package runcmd

import (
	"context"
	"io"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/hooks"
)

// dbWithHook is a new database with one hook for 908508850000 posting to
// url.
func dbWithHook(t *testing.T, url string) string {
	t.Helper()
	db := filepath.Join(t.TempDir(), "kanca.db")
	store, err := hooks.Open(db)
	require.NoError(t, err)
	_, err = store.AddHook(context.Background(), hooks.Hook{Number: "908508850000", URL: url})
	require.NoError(t, err)
	require.NoError(t, store.Close())
	return db
}

var addrRe = regexp.MustCompile(`"msg":"serving metrics and API","addr":"([^"]+)"`)

// startRun runs `kanca run args...` (with --log-format json and --listen)
// until the test ends or stop is called, and returns the address it
// serves on.
func startRun(t *testing.T, db string, args ...string) (addr string, stderr *syncBuffer, stop func() error) {
	t.Helper()
	cmd := New(&db)
	stderr = &syncBuffer{}
	cmd.SetOut(io.Discard)
	cmd.SetErr(stderr)
	cmd.SetArgs(append(args, "--listen", "127.0.0.1:0", "--log-format", "json"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			cancel()
			err = <-done
			stopped = true
		}
		return err
	}
	t.Cleanup(func() { _ = stop() })
	waitFor(t, "the API to listen", func() bool {
		m := addrRe.FindStringSubmatch(stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr, stderr, stop
}
