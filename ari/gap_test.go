package ari

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/follow/sourcetest"
)

// OnReconcile hears of every (re)connect, after the reconciliation's
// inputs and before the new connection's events, with when the stream was
// last heard and Asterisk's clock when it came back.
func TestOnReconcileTellsTheGap(t *testing.T) {
	frames := scenario(t, "s01")
	n := lastBridgeEnter(t, frames)
	before := decodeAll(t, frames[:n])
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)
	srv.DropAfter(n, len(frames)-n)

	type heard struct {
		gap     follow.Gap
		emitted int64
	}
	gaps := make(chan heard, 4)
	var emitted atomic.Int64
	logs := &sourcetest.Logs{}
	src, err := New(Config{URL: srv.URL, User: "kanca", Password: "kanca", Logger: logs.Logger(), PingInterval: -1,
		Backoff: Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond},
		OnReconcile: func(g follow.Gap) {
			gaps <- heard{g, emitted.Load()}
		}})
	require.NoError(t, err)
	h := sourcetest.Start(t, logs, 10000, func(ctx context.Context, emit func(cdr.Input)) error {
		return src.Run(ctx, func(in cdr.Input) { emitted.Add(1); emit(in) })
	})
	first := <-gaps
	assert.True(t, first.gap.First)
	assert.True(t, first.gap.Since.IsZero(), "nothing seen, nothing seeded")
	assert.Zero(t, first.gap.Gone)

	playAfterList(t, srv, 1, frames...)
	sourcetest.SameInputs(t, before, h.Take(t, len(before)))
	again := <-gaps
	h.Take(t, 2) // the two legs, gone
	assert.False(t, again.gap.First)
	assert.Equal(t, int64(len(before)+2), again.emitted, "after the gone inputs")
	assert.True(t, sourcetest.Latest(before).Equal(again.gap.Since), "the stream was last heard at its last event")
	assert.Equal(t, 2, again.gap.Gone)
	assert.Zero(t, again.gap.Pending)

	// Asterisk's clock at the list: the Date of its answer, which follows
	// the last frame lived through in the gap.
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/ari/channels", nil)
	require.NoError(t, err)
	req.SetBasicAuth("kanca", "kanca")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	require.NoError(t, err)
	assert.True(t, date.Equal(again.gap.Until), "until %s, want %s", again.gap.Until, date)
}
