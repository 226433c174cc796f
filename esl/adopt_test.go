package esl

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/follow/sourcetest"
)

// A call that began while kanca was away and was answered (or, outbound,
// went out) is adopted when kanca comes back as the call it is: its legs
// joined by the call's A-leg (call_uuid), the other leg as the one the
// call dialled, answered when listed ACTIVE, and its routing so far read
// from what the A-leg runs now (bridge user/1000, bridge to a gateway).
// Its webhooks are those of a kanca that never left, less the steps lived
// through in the gap.
func TestSourceAdoptsACallMidwayWithItsLegs(t *testing.T) {
	for _, tt := range []struct {
		trace string
		want  func([]sourcetest.Shape) []sourcetest.Shape
	}{
		{"f01", nil},
		{"f02", nil},
		{"f08", nil},
		{"f06", sourcetest.AfterMenu}, // the menu was lived through in the gap
	} {
		t.Run(tt.trace, func(t *testing.T) {
			events := trace(t, tt.trace)
			want := sourcetest.Shapes(decodeSorted(t, events))
			if tt.want != nil {
				want = tt.want(want)
			}
			n := lastBridge(t, events)
			srv := newServer(t, esltest.Options{})
			srv.Play(events[:n]...)
			srv.LiveThrough(n)
			srv.DropAfter(len(events), 0) // the drop releases what the reorder buffer holds

			reconciled := make(chan struct{}, 2)
			h := start(t, srv, func(c *Config) { c.OnReconcile = func(follow.Gap) { reconciled <- struct{}{} } })
			<-reconciled
			srv.Play(events[n:]...)
			// The drop after the last event releases what the reorder
			// buffer holds; reconnected, the source has emitted it all.
			waitFor(t, srv, func() bool { return srv.Listings() >= 2 })
			got := h.StopAndDrain()
			adopted, bridged := 0, 0
			for _, in := range got {
				switch {
				case in.Adopted && in.Kind == cdr.KindCreated:
					adopted++
				case in.Adopted && in.Kind == cdr.KindBridgeEnter:
					bridged++
				}
			}
			assert.Equal(t, 2, adopted, "both legs adopted")
			assert.Equal(t, 2, bridged, "both legs told bridged, as the list of calls pairs them")
			// The list of calls joins the callee to its caller: the
			// caller's session is asked for the number its call arrived
			// on, the answered callee's for when it answered, which is
			// where its call's answer is placed (not at the list, nor at
			// its creation).
			assert.Equal(t, 2, srv.Asked("uuid_dump"), "the caller's and the answered callee's")
			answered := map[string]time.Time{}
			for _, fr := range events[:n] {
				if f, err := ParseJSON(fr); err == nil && f["event-name"] == "CHANNEL_ANSWER" {
					answered[f["unique-id"]] = answeredAt(f)
				}
			}
			for _, in := range got {
				if in.Adopted && in.Kind == cdr.KindCreated {
					assert.Equal(t, answered[in.Channel.ID].UTC(), in.Channel.Answered.UTC(), "%s answered when its session says", in.Channel.ID)
				}
			}
			require.NotEmpty(t, want)
			assert.Equal(t, want, sourcetest.Shapes(got))
		})
	}
}

// A channel listed but gone before it is described is adopted as listed:
// FreeSWITCH's "-ERR No such channel!" to uuid_dump is no failure.
func TestDescribeSkipsAChannelGoneSinceTheList(t *testing.T) {
	events := trace(t, "f01")
	srv := newServer(t, esltest.Options{})
	srv.Play(events...)
	srv.LiveThrough(len(events)) // every channel ended
	e := describing(t, srv)
	ch := cdr.Channel{ID: "0d3d4cef-6ea8-448c-9b56-241b0913c185", CallerNumber: "1000"}
	require.NoError(t, e.Describe(context.Background(), []*cdr.Channel{&ch}))
	assert.Equal(t, cdr.Channel{ID: "0d3d4cef-6ea8-448c-9b56-241b0913c185", CallerNumber: "1000"}, ch)
}

// A channel listed before it routed has no caller number in FreeSWITCH's
// channel table (its CHANNEL_CREATE insert leaves cid_num empty until
// CS_ROUTING); the session holds it, and the call is adopted with it.
func TestDescribeFillsTheCallerANewChannelIsListedWithout(t *testing.T) {
	events := trace(t, "f01")
	srv := newServer(t, esltest.Options{})
	srv.Play(events...)
	srv.LiveThrough(5) // up to the A-leg's CHANNEL_CREATE
	e := describing(t, srv)
	l, err := e.List(context.Background())
	require.NoError(t, err)
	require.Len(t, l.Channels, 1)
	ch := l.Channels[0].Channel
	require.Empty(t, ch.CallerNumber, "the table has no cid_num yet")
	require.NoError(t, e.Describe(context.Background(), []*cdr.Channel{&ch}))
	assert.Equal(t, "905321234567", ch.CallerNumber)
}

// A recording begun while kanca was away runs no application when it is
// back (g06: record_session, then bridge); the session's media bugs name
// its file (uuid_buglist), and a leg that is not recorded has none.
func TestDescribeReadsTheFileASessionIsRecordedTo(t *testing.T) {
	events := trace(t, "g06")
	bridge := index(t, events, 0, "CHANNEL_BRIDGE", "")
	require.Positive(t, bridge)
	srv := newServer(t, esltest.Options{})
	srv.Play(events...)
	srv.LiveThrough(bridge + 1)
	e := describing(t, srv)
	l, err := e.List(context.Background())
	require.NoError(t, err)
	files := map[string]string{}
	for _, c := range l.Channels {
		ch := c.Channel
		require.NoError(t, e.Describe(context.Background(), []*cdr.Channel{&ch}))
		files[ch.ID] = ch.Recording
	}
	assert.Equal(t, map[string]string{
		"9bde5636-e188-46d6-92d2-b6defc883971": "/var/lib/freeswitch/recordings/9bde5636-e188-46d6-92d2-b6defc883971.wav", // the caller
		"dd9ee1c7-6baa-4180-b25a-a2d1d781c2b9": "",                                                                        // 1000
	}, files)
}

// describing is a session on srv, for Describe and List alone.
func describing(t *testing.T, srv *esltest.Server) *session {
	t.Helper()
	c, err := Dial(context.Background(), srv.Addr, "ClueCon", 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	src, err := New(Config{Addr: srv.Addr, Password: "ClueCon"})
	require.NoError(t, err)
	return &session{src: src, c: c}
}

// A callee's leg listed between its CHANNEL_CREATE and its
// CHANNEL_ORIGINATE has no call_uuid in FreeSWITCH's channel table (the
// core database sets it at CHANNEL_ORIGINATE); its session knows whose
// leg it is (Other-Type "originator", Other-Leg-Unique-ID), as its own
// events say. Adopted, it joins its caller's call as the leg the call
// dialled, and its answer answers that call: both when the caller's leg
// is adopted with it and when kanca already followed the caller.
func TestSourceAdoptsACalleeListedBeforeItsOriginate(t *testing.T) {
	events := trace(t, "f01")
	want := sourcetest.Shapes(decodeSorted(t, events))
	n := index(t, events, 0, "CHANNEL_ORIGINATE", "") // the callee is created, not yet originated
	require.Positive(t, n)
	for _, tt := range []struct {
		name  string
		heard int // events kanca heard before the gap
	}{
		{"both legs adopted", 0},
		{"the caller followed", index(t, events, 0, "CHANNEL_EXECUTE", "") + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, esltest.Options{})
			reconciled := make(chan follow.Gap, 4)
			if tt.heard == 0 {
				srv.Play(events[:n]...)
				srv.LiveThrough(n)
			}
			h := start(t, srv, func(c *Config) { c.OnReconcile = func(g follow.Gap) { reconciled <- g } })
			<-reconciled
			if tt.heard > 0 {
				// kanca hears the caller's start, then lives through the rest.
				srv.DropAfter(tt.heard, n-tt.heard)
				srv.Play(events[:n]...)
				<-reconciled
			}
			srv.DropAfter(len(events), 0) // the drop releases what the reorder buffer holds
			srv.Play(events[n:]...)
			waitFor(t, srv, func() bool { return srv.Listings() >= 2+min(tt.heard, 1) })
			got := h.StopAndDrain()
			var callee *cdr.Input
			for i, in := range got {
				if in.Adopted && in.Kind == cdr.KindCreated && in.Channel.ID == "61081fde-3052-4d4a-8e2c-6bfadb53588d" {
					callee = &got[i]
				}
			}
			require.NotNil(t, callee, "the callee's leg adopted")
			assert.Equal(t, "14f12621-7640-40c9-a5f3-a4d4a52da487", callee.Channel.LinkedID, "linked to its caller's leg")
			assert.Equal(t, want, sourcetest.Shapes(got))
		})
	}
}

// A ring group's call whose answer fell in a gap is not reported missed,
// wherever the gap falls: FreeSWITCH's list shows the callee ringing
// until its CHANNEL_CALLSTATE, so the answer is read from the callee's
// next event (an answered leg hanging up is still up), and a leg the list
// shows answered is told before its caller's end closes the call, even
// when the callee's dial itself was lived through unheard.
func TestSourceTellsAnAnswerAGapHid(t *testing.T) {
	events := trace(t, "f07_")
	missed := func(inputs []cdr.Input) bool {
		return slices.ContainsFunc(sourcetest.Shapes(inputs), func(s sourcetest.Shape) bool { return s.Type == cdr.MissingCall })
	}
	require.False(t, missed(decodeSorted(t, events)), "1002 answered")
	for heard := 1; heard < len(events)-3; heard += 3 {
		for _, gap := range []int{3, 8, 15, 30} {
			if heard+gap >= len(events) {
				continue
			}
			srv := newServer(t, esltest.Options{})
			reconciled := make(chan follow.Gap, 4)
			h := start(t, srv, func(c *Config) { c.OnReconcile = func(g follow.Gap) { reconciled <- g } })
			<-reconciled
			srv.DropAfter(heard, gap)
			srv.Play(events[:heard+gap]...)
			<-reconciled
			srv.DropAfter(len(events), 0) // the drop releases what the reorder buffer holds
			srv.Play(events[heard+gap:]...)
			waitFor(t, srv, func() bool { return srv.Listings() >= 3 })
			assert.False(t, missed(h.StopAndDrain()), "heard %d events, then %d unheard", heard, gap)
			srv.Close()
		}
	}
}

// A call that began while kanca was away and was picked up, taken from a
// park or transferred there is adopted as the inbound call it is, talking
// to the extension the list of calls pairs it with: an inbound leg is its
// own call's first leg, whatever leg FreeSWITCH bridged it to since (a
// picker's, a retriever's: the pair's A leg, whose call_uuid it now
// carries). The step before, lived through in the gap, is not told.
func TestSourceAdoptsACallTakenInTheGapByTheLegBridgedWithIt(t *testing.T) {
	for _, name := range []string{"g01", "g03", "g04"} {
		t.Run(name, func(t *testing.T) {
			events := trace(t, name)
			want := sourcetest.Shapes(decodeSorted(t, events))
			n := lastBridge(t, events)
			srv := newServer(t, esltest.Options{})
			srv.Play(events[:n]...)
			srv.LiveThrough(n)
			srv.DropAfter(len(events), 0)

			reconciled := make(chan struct{}, 2)
			h := start(t, srv, func(c *Config) { c.OnReconcile = func(follow.Gap) { reconciled <- struct{}{} } })
			<-reconciled
			srv.Play(events[n:]...)
			waitFor(t, srv, func() bool { return srv.Listings() >= 2 })
			assert.Equal(t, afterFirstStep(want), sourcetest.Shapes(h.StopAndDrain()))
		})
	}
}

// afterFirstStep is what a call's shapes become when kanca adopts it
// once its first extension handed it on: that extension's event and
// steps are gone, its callflow runs from the number it arrived on to
// where it is.
func afterFirstStep(full []sourcetest.Shape) []sourcetest.Shape {
	var out []sourcetest.Shape
	skipped := false
	for _, s := range full {
		if s.Type == cdr.CallInitExtension && !skipped {
			skipped = true
			continue
		}
		if s.Callflow != nil {
			s.Callflow = []string{s.Callee + " " + cdr.RedirectedToExtension, s.Callflow[len(s.Callflow)-1]}
		}
		out = append(out, s)
	}
	return out
}
