package follow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

func TestBackoffWaits(t *testing.T) {
	b := Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2}
	want := 500 * time.Millisecond
	for attempt := range 12 {
		assert.Equal(t, want, b.Wait(attempt, 0.5), "attempt %d", attempt)
		assert.Equal(t, time.Duration(float64(want)*0.8), b.Wait(attempt, 0))
		assert.InDelta(t, float64(want)*1.2, float64(b.Wait(attempt, 0.999999)), float64(time.Millisecond))
		want = min(want*2, b.Max)
	}
	assert.Equal(t, b.Max, b.Wait(1000, 0.5), "no overflow for a long outage")
}

func TestBackoffDefaults(t *testing.T) {
	assert.Equal(t, Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Jitter: 0.2}, Backoff{}.WithDefaults())
	assert.Equal(t, Backoff{Initial: time.Second, Max: time.Second, Jitter: 0.2},
		Backoff{Initial: time.Second, Max: time.Millisecond, Jitter: 1}.WithDefaults(), "Max is at least Initial")
}

// Seeding is for before Run: the channels it holds belong to Run's
// goroutine.
func TestSeedPanicsWhileRunning(t *testing.T) {
	dialing := make(chan struct{}, 1)
	f := New(Config{Name: "x", PBX: "X", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		func(ctx context.Context) (Session, error) {
			dialing <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, func(cdr.Input) {}) }()
	<-dialing
	assert.PanicsWithValue(t, "x: Seed called while the Source runs", func() { f.Seed(nil) })
	assert.EqualError(t, f.Run(ctx, func(cdr.Input) {}), "x: Source is already running")
	cancel()
	require.NoError(t, <-done)
	assert.EqualError(t, f.Run(ctx, nil), "x: Run needs an emit function")
	f.Seed(nil) // stopped: allowed again
}

func TestExcerpt(t *testing.T) {
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'a'
	}
	assert.Len(t, Excerpt(long), excerptLen)
	assert.Equal(t, "ok\uFFFD", Excerpt([]byte("ok\xff")), "invalid UTF-8 is made safe to log")
}

func TestBrief(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	unauthorized := errors.New("Asterisk refused the ARI credentials")
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("connect ws://127.0.0.1:8088/ari/events: failed to WebSocket dial: %w", &url.Error{Op: "Get", URL: "http://127.0.0.1:8088/ari/events", Err: refused}), "connection refused"},
		{fmt.Errorf("connect ws://x: %w", fmt.Errorf("%w (HTTP 401): check the user and password in ari.conf", unauthorized)),
			"Asterisk refused the ARI credentials (HTTP 401): check the user and password in ari.conf"},
		{fmt.Errorf("list channels: %w", context.DeadlineExceeded), "timed out"},
		{errors.New("plain"), "plain"},
	} {
		assert.Equal(t, c.want, Brief(c.err))
	}
	assert.Equal(t, "1.5s", roundWait(1523871233*time.Nanosecond).String())
	assert.Equal(t, "12s", roundWait(12345*time.Millisecond).String())
}

// Failed attempts are counted (the reconnect metric stayed 0 through
// seven refused connections) and each is one readable log line.
func TestFailedAttemptsAreCountedAndLoggedReadably(t *testing.T) {
	var logs strings.Builder // read once Run has returned
	attempts := make(chan struct{}, 10)
	f := New(Config{Name: "x", PBX: "Asterisk", Backoff: Backoff{Initial: time.Millisecond, Max: time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		func(ctx context.Context) (Session, error) {
			attempts <- struct{}{}
			return nil, fmt.Errorf("connect ws://127.0.0.1:1/ari/events: %w",
				&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
		})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, func(cdr.Input) {}) }()
	// The fourth attempt starts only after the third was counted; the
	// one cancel cuts short is not.
	for range 4 {
		<-attempts
	}
	cancel()
	require.NoError(t, <-done)
	st := f.Stats()
	assert.GreaterOrEqual(t, st.Failures, uint64(3))
	assert.Zero(t, st.Reconnects)
	assert.True(t, st.Since.IsZero())
	line := strings.SplitN(logs.String(), "\n", 2)[0]
	assert.Contains(t, line, `msg="cannot connect to Asterisk: connection refused; retrying in 0s (kanca doctor checks the connection)"`)
	assert.NotContains(t, line, "dial tcp", "no Go error chain")
}
