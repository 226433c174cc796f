package sourcetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/follow/followtest"
)

// PBX is one PBX's source and fake, for the tests every source passes
// alike: the rules of package follow, seen through an adapter.
type PBX struct {
	// Name is the PBX as the logs name it ("Asterisk").
	Name string
	// Start starts a fake PBX and, until the test ends, a source against
	// it, with the source's counters.
	Start func(t *testing.T) (*followtest.Stage, *Run, func() follow.Stats)
	// Decode is what replay reads from a recording: its inputs in the
	// PBX's order.
	Decode func(t testing.TB, events [][]byte) []cdr.Input
}

// GoneDuringADrop plays a call whose legs are all up after events[:up],
// drops the connection there and lives through its hangup with nobody
// listening: the legs are reported gone after the reconnect, in creation
// order, at the last event seen, with their last snapshot.
func GoneDuringADrop(t *testing.T, pbx PBX, events [][]byte, up int) {
	before := pbx.Decode(t, events[:up])
	legs := CreatedIDs(before)
	require.Len(t, legs, 2)

	st, h, stats := pbx.Start(t)
	connected := func() bool { return stats().Connected }
	st.DropAfter(up, len(events)-up) // the hangup happens while nobody listens
	PlayWhenUp(t, st, 1, connected, events...)
	SameInputs(t, before, h.Take(t, len(before)))
	gone := h.Take(t, 2)
	for i, in := range gone {
		assert.Equal(t, cdr.KindGone, in.Kind)
		assert.Equal(t, legs[i], in.Channel.ID, "in creation order")
		assert.True(t, Latest(before).Equal(in.Time), "gone at the last event seen")
		assert.Equal(t, "Up", in.Channel.State, "with the last snapshot")
		assert.Equal(t, before[0].Server, in.Server)
	}
	WaitFor(t, st, func() bool { return st.Listings() >= 2 })
	assert.Empty(t, h.StopAndDrain())
	s := stats()
	assert.Equal(t, uint64(1), s.Reconnects)
	assert.Equal(t, uint64(2), s.Gone)
	assert.Equal(t, 2, st.Connections())
	assert.Contains(t, h.Logs.String(), "disconnected from "+pbx.Name)
	assert.Contains(t, h.Logs.String(), "reconnected to "+pbx.Name)
}

// BornDuringADrop plays the first call up to up, drops the connection
// there and lives through its hangup and second[:born] with nobody
// listening: the second call's inbound leg is then listed, and adopted
// just before its first event since the list, with the listed snapshot.
// It returns the adopting input, with the inputs of second before and
// after the gap, for the checks particular to the PBX.
func BornDuringADrop(t *testing.T, pbx PBX, first [][]byte, up int, second [][]byte, born int) (adopted cdr.Input, gap, after []cdr.Input) {
	before := pbx.Decode(t, first[:up])
	gap = pbx.Decode(t, second[:born])
	bornLeg := CreatedIDs(gap)
	require.Len(t, bornLeg, 1)
	after = Resumed(pbx.Decode(t, second[born:]), bornLeg[0])

	st, h, stats := pbx.Start(t)
	connected := func() bool { return stats().Connected }
	st.DropAfter(up, len(first)-up+born)
	PlayWhenUp(t, st, 1, connected, append(append([][]byte{}, first...), second[:born]...)...)
	SameInputs(t, before, h.Take(t, len(before)))
	for _, in := range h.Take(t, 2) {
		assert.Equal(t, cdr.KindGone, in.Kind)
	}
	// The listed channel is adopted when its first event since the list
	// arrives, just before that event: only then is it sure that no
	// creation of its own was queued behind the list. A drop after the
	// last event lets go what a source holds back for ordering.
	st.DropAfter(len(first)+len(second), 0)
	PlayWhenUp(t, st, 2, connected, second[born:]...)
	adopted = h.Take(t, 1)[0]
	assert.Equal(t, cdr.KindCreated, adopted.Kind, "adoption comes before the channel's first event")
	assert.Equal(t, bornLeg[0], adopted.Channel.ID)
	assert.Equal(t, gap[0].Server, adopted.Server)
	assert.Equal(t, "Ring", adopted.Channel.State, "with the listed snapshot")
	assert.False(t, adopted.Time.Before(adopted.Channel.Created))

	SameInputs(t, after, h.Take(t, len(after)))
	WaitFor(t, st, func() bool { return st.Listings() >= 3 })
	assert.Empty(t, h.StopAndDrain())
	s := stats()
	assert.Equal(t, uint64(1), s.Adopted)
	assert.Equal(t, uint64(2), s.Gone)
	return adopted, gap, after
}
