package esl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/follow/sourcetest"
)

// A command FreeSWITCH never answers fails once the connection's timeout
// has passed, with an error that says so, even when the caller set no
// deadline; its late answer does not shift the answers behind it.
func TestAPITimesOutWithoutAnAnswer(t *testing.T) {
	srv := newServer(t, esltest.Options{})
	ctx := context.Background()
	c, err := Dial(ctx, srv.Addr, "ClueCon", 100*time.Millisecond)
	require.NoError(t, err)
	defer c.Close()

	srv.Hang(0)
	_, err = c.API(ctx, "status")
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, "api status: no answer from FreeSWITCH within 100ms: context deadline exceeded", err.Error())
	_, err = c.BgAPI(ctx, "status")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "bgapi status: no answer from FreeSWITCH within 100ms")

	srv.Resume()
	body, err := c.API(ctx, "show channels as json")
	require.NoError(t, err)
	assert.Equal(t, "{\"row_count\": 0}\n", body, "the answer to this command, not a late one")
	assert.NoError(t, c.Err(), "the connection outlives a late answer")
}

// Commands go through the connection the Source follows FreeSWITCH with,
// bounded by its Timeout, and fail plainly while it has none.
func TestSourceCommandsUseItsConnection(t *testing.T) {
	srv := newServer(t, esltest.Options{})
	h := start(t, srv, func(c *Config) { c.Timeout = 200 * time.Millisecond })
	ctx := context.Background()

	waitFor(t, srv, func() bool { return srv.Listings() >= 1 })
	sourcetest.Eventually(t, func() bool { return h.src.Stats().Connected })
	body, err := h.src.API(ctx, "status")
	require.NoError(t, err)
	assert.Contains(t, body, "FreeSWITCH (Version 1.10")
	job, err := h.src.BgAPI(ctx, "status")
	require.NoError(t, err)
	assert.Regexp(t, `^[0-9a-f-]{36}$`, job)
	_, err = h.src.API(ctx, "nosuch")
	assert.ErrorIs(t, err, ErrCommand)
	assert.Equal(t, 1, srv.Attempts(), "on the connection the source reads from")

	srv.Hang(0)
	_, err = h.src.API(ctx, "status")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "no answer from FreeSWITCH within 200ms")
	srv.Resume()

	h.Stop()
	_, err = h.src.API(ctx, "status")
	assert.ErrorIs(t, err, ErrNotConnected)
	_, err = h.src.BgAPI(ctx, "originate user/1000 &park")
	assert.ErrorIs(t, err, ErrNotConnected)
	assert.True(t, strings.HasPrefix(err.Error(), "bgapi originate user/1000 &park: "))
}
