package esl

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/follow/sourcetest"
)

// listLag is how far the fake's channel table runs behind its events in
// these tests, and relist when the source lists again: the real lag is
// about 0.1 s, these leave room for a loaded machine.
const (
	listLag = 300 * time.Millisecond
	relist  = 1200 * time.Millisecond
)

// lagging starts a fake whose channel list lags its events and a source
// that lists again after relist; events leave the reorder buffer on their
// own, a clock being part of what is tested.
func lagging(t *testing.T) (*esltest.Server, *harness) {
	srv := newServer(t, esltest.Options{ListLag: listLag})
	h := start(t, srv, func(c *Config) {
		c.ReorderWait = 10 * time.Millisecond
		c.Relist = relist
	})
	return srv, h
}

// dropLivingThrough cuts the source off once the script has been sent
// and lives through events with nobody listening, at once.
func dropLivingThrough(srv *esltest.Server, events ...[]byte) {
	srv.Hang(0) // nothing is sent while the gap is set up
	at := srv.Pos()
	srv.Play(events...)
	srv.DropAfter(at, len(events))
	srv.Resume()
}

// A call that ended just before the reconnect is still in FreeSWITCH's
// list, its end among the events nobody received: listed again, it is
// reported gone, at the last event seen.
func TestSourceClosesWhatALaggingListStillShowed(t *testing.T) {
	events := trace(t, "f01")
	up := lastBridge(t, events)
	before := decodeSorted(t, events[:up])
	legs := sourcetest.CreatedIDs(before)
	require.Len(t, legs, 2)

	srv, h := lagging(t)
	playAfterList(t, srv, 1, events[:up]...)
	sourcetest.SameInputs(t, before, h.Take(t, len(before)))
	time.Sleep(2 * listLag) // the table shows the call up
	dropLivingThrough(srv, events[up:]...)

	gone := h.Take(t, 2)
	for i, in := range gone {
		assert.Equal(t, cdr.KindGone, in.Kind)
		assert.Equal(t, legs[i], in.Channel.ID)
		assert.True(t, sourcetest.Latest(before).Equal(in.Time), "gone at the last event seen")
	}
	assert.GreaterOrEqual(t, srv.Listings(), 3, "gone only once listed again")
	sourcetest.Eventually(t, func() bool { return h.src.Stats().Gone == 2 }) // counted once both are out
}

// A call born just before the reconnect is not yet in FreeSWITCH's list:
// listed again, it is adopted at its next event, and followed from there.
func TestSourceAdoptsWhatALaggingListMissed(t *testing.T) {
	second := trace(t, "f02")
	born := index(t, second, 0, "CHANNEL_STATE", "CS_ROUTING") + 1
	require.Positive(t, born)
	leg := sourcetest.CreatedIDs(decodeSorted(t, second[:born]))
	require.Len(t, leg, 1)

	srv, h := lagging(t)
	waitFor(t, srv, func() bool { return srv.Listings() >= 1 })
	dropLivingThrough(srv, second[:born]...)
	waitFor(t, srv, func() bool { return srv.Listings() >= 2 }) // reconnected
	time.Sleep(relist + listLag)                                // and listed again
	srv.Play(second[born:]...)

	adopted := h.Take(t, 1)[0]
	assert.Equal(t, cdr.KindCreated, adopted.Kind)
	assert.True(t, adopted.Adopted)
	assert.Equal(t, leg[0], adopted.Channel.ID)
	assert.Equal(t, "908508850000", adopted.Channel.Exten)
	assert.Equal(t, uint64(1), h.src.Stats().Adopted)
}
