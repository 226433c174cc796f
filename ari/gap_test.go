package ari

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
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

// A call that began while kanca was away, went through a menu to an
// extension and was answered there, is adopted when kanca comes back as
// the call it is: the number it arrived on (a DID variable; its extension
// is now the menu's choice), its callee's leg joined to it, answered, and
// its routing so far read from what it runs now.
func TestSourceAdoptsACallMidwayWithItsNumberAndLegs(t *testing.T) {
	frames := scenario(t, "s06")
	want := sourcetest.Shapes(decodeAll(t, frames))
	n := lastBridgeEnter(t, frames) + 1
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)
	srv.Play(frames[:n]...)
	srv.LiveThrough(n)

	reconciled := make(chan struct{}, 1)
	h := start(t, srv.URL, func(c *Config) { c.OnReconcile = func(follow.Gap) { reconciled <- struct{}{} } })
	<-reconciled // what the list showed is described: the call goes on
	srv.Play(frames[n:]...)
	var got []cdr.Input
	for sourcetest.CountKind(got, cdr.KindDestroyed) < 2 {
		got = append(got, h.Take(t, 1)[0])
	}
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
	assert.Equal(t, 2, bridged, "both legs told bridged, as the list of bridges shows them")
	gotShapes := sourcetest.Shapes(got)
	require.NotEmpty(t, gotShapes)
	// The menu was lived through in the gap: the adopted call starts at
	// the extension.
	assert.Equal(t, sourcetest.AfterMenu(want), gotShapes)
}

// A recording begun while kanca was away (t06: MixMonitor, which no
// event repeats and no CEL row names) is adopted with the call: the
// variable MixMonitor set on the caller's channel names its file.
func TestSourceAdoptsACallWithTheRecordingBegunInTheGap(t *testing.T) {
	frames := scenario(t, "t06")
	n := slices.IndexFunc(frames, func(f []byte) bool { return bytes.Contains(f, []byte(`"variable":"MIXMONITOR_FILENAME"`)) })
	require.Positive(t, n)
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)
	srv.Play(frames[:n+1]...)
	srv.LiveThrough(n + 1)

	reconciled := make(chan struct{}, 1)
	h := start(t, srv.URL, func(c *Config) { c.OnReconcile = func(follow.Gap) { reconciled <- struct{}{} } })
	<-reconciled
	srv.Play(frames[n+1:]...)
	var caller *cdr.Input
	for caller == nil {
		if in := h.Take(t, 1)[0]; in.Adopted && in.Kind == cdr.KindCreated && in.Channel.Name == "PJSIP/trunk-0000003a" {
			caller = &in
		}
	}
	assert.Equal(t, "<astspooldir>/monitor/1796461265.64.wav", caller.Channel.Recording)
}

// Another client subscribing as kanca's application takes its events
// (Asterisk sends the old socket ApplicationReplaced and leaves it open
// and silent): kanca says so and subscribes again, and misses nothing
// played after.
func TestSourceNoticesItsApplicationReplaced(t *testing.T) {
	frames := scenario(t, "s01")
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)
	h := start(t, srv.URL, nil)
	waitFor(t, srv, func() bool { return srv.Listings() == 1 && srv.Connected() })

	ctx, cancel := context.WithTimeout(context.Background(), failsafe)
	defer cancel()
	other, _, err := websocket.Dial(ctx, "ws"+srv.URL[len("http"):]+"/ari/events?app=kanca&subscribeAll=true",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("kanca:kanca"))}}})
	require.NoError(t, err)
	t.Cleanup(func() { other.CloseNow() })

	// kanca takes its application back: the intruder is the one replaced.
	_, data, err := other.Read(ctx)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"type":"ApplicationReplaced"`)
	waitFor(t, srv, func() bool { return srv.Listings() == 2 && srv.Connected() })
	assert.Contains(t, h.logs.String(), "level=ERROR")
	assert.Contains(t, h.logs.String(), ErrReplaced.Error())
	assert.Contains(t, h.src.Stats().LastError, ErrReplaced.Error())

	srv.Play(frames...)
	sourcetest.SameInputs(t, decodeAll(t, frames), h.Take(t, len(decodeAll(t, frames))))
}

// A socket that stays open, answers pings and says nothing while the
// call kanca follows ends (Asterisk no longer feeds it the application's
// events) is noticed: listed while silent, the call's channels are gone,
// so kanca drops the connection and the reconnect reconciles them.
func TestSourceNoticesASilentStream(t *testing.T) {
	frames := scenario(t, "s01")
	up := lastBridgeEnter(t, frames)
	before := decodeAll(t, frames[:up])
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)
	h := start(t, srv.URL, func(c *Config) { c.PingInterval = 50 * time.Millisecond })
	sourcetest.PlayWhenUp(t, srv.Stage, 1, func() bool { return h.src.Stats().Connected }, frames[:up]...)
	sourcetest.SameInputs(t, before, h.Take(t, len(before)))
	srv.Hang(0) // sends nothing while the rest is set up
	srv.Play(frames[up:]...)
	srv.LiveThrough(len(frames) - up) // the call ends; the socket hears nothing of it
	srv.Resume()

	for _, in := range h.Take(t, 2) {
		assert.Equal(t, cdr.KindGone, in.Kind)
	}
	assert.Contains(t, h.logs.String(), "silent")
	// Counted once the reconciliation's inputs are out.
	sourcetest.Eventually(t, func() bool { return h.src.Stats().Reconnects == 1 })
}

// A callee's leg created just before a gap waits for the Dial that made
// it (Asterisk's snapshots do not name a channel's call); the Dial, the
// answer and the caller's hangup request fall in the gap. Listed again,
// the leg is asked its CHANNEL(linkedid) and joins its caller's call as
// the leg the call dialled, answered: the call is not missed.
func TestSourceJoinsALegWhoseDialAGapHid(t *testing.T) {
	frames := scenario(t, "s06")
	want := sourcetest.Shapes(decodeAll(t, frames))
	created := -1 // the callee's ChannelCreated
	for i, fr := range frames {
		if bytes.Contains(fr, []byte(`"type":"ChannelCreated"`)) && i > 0 {
			created = i
			break
		}
	}
	require.Positive(t, created)
	left := slices.IndexFunc(frames, func(fr []byte) bool { return bytes.Contains(fr, []byte(`"type":"ChannelLeftBridge"`)) })
	require.Greater(t, left, created)

	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)
	reconciled := make(chan struct{}, 4)
	h := start(t, srv.URL, func(c *Config) { c.OnReconcile = func(follow.Gap) { reconciled <- struct{}{} } })
	<-reconciled
	srv.Play(frames[:created+1]...) // the callee's creation is heard
	waitFor(t, srv, func() bool { return srv.Pos() == created+1 })
	// Its Dial, its answer and the caller's hangup request are not.
	srv.Hang(0)
	srv.Play(frames[created+1 : left]...)
	srv.DropAfter(created+1, left-created-1)
	srv.Resume()
	<-reconciled
	srv.Play(frames[left:]...)
	var got []cdr.Input
	for sourcetest.CountKind(got, cdr.KindDestroyed) < 2 {
		got = append(got, h.Take(t, 1)[0])
	}
	assert.False(t, slices.ContainsFunc(sourcetest.Shapes(got), func(s sourcetest.Shape) bool { return s.Type == cdr.MissingCall }),
		"answered by 1000")
	assert.Equal(t, want, sourcetest.Shapes(got))
}

// A call that began while kanca was away and is talking when it comes
// back is told as the live events would have told it, from whom the list
// of bridges shows bridged with its caller: a queue's or a ring group's
// member took the group's call (its own step in the callflow), and an
// extension that picked the call up took it from the one it rang (not
// the pickup code it dialled).
func TestSourceAdoptsTheLegBridgedWithTheCallerAsWhoTookTheCall(t *testing.T) {
	for _, name := range []string{"s07", "s12", "t03"} {
		t.Run(name, func(t *testing.T) {
			frames := scenario(t, name)
			want := sourcetest.Shapes(decodeAll(t, frames))
			n := lastBridgeEnter(t, frames) + 1
			srv := aritest.NewServer(aritest.Options{})
			t.Cleanup(srv.Close)
			srv.Play(frames[:n]...)
			srv.LiveThrough(n)

			reconciled := make(chan struct{}, 1)
			h := start(t, srv.URL, func(c *Config) { c.OnReconcile = func(follow.Gap) { reconciled <- struct{}{} } })
			<-reconciled
			srv.Play(frames[n:]...)
			var got []cdr.Input
			for sourcetest.CountKind(got, cdr.KindDestroyed) < 2 {
				got = append(got, h.Take(t, 1)[0])
			}
			assert.Equal(t, want, sourcetest.Shapes(got))
		})
	}
}

// A call that came in and was blind-transferred while kanca was away
// runs, when listed, in the extensions' context it was sent to: the DID
// variable the inbound dialplan set says it came in, so it is delivered
// for its number, answered by the extension it talks to.
func TestSourceAdoptsACallTransferredInTheGapAsTheInboundCallItIs(t *testing.T) {
	frames := scenario(t, "t02")
	want := sourcetest.Shapes(decodeAll(t, frames))
	n := lastBridgeEnter(t, frames) + 1
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)
	srv.Play(frames[:n]...)
	srv.LiveThrough(n)

	reconciled := make(chan struct{}, 1)
	h := start(t, srv.URL, func(c *Config) { c.OnReconcile = func(follow.Gap) { reconciled <- struct{}{} } })
	<-reconciled
	srv.Play(frames[n:]...)
	var got []cdr.Input
	for sourcetest.CountKind(got, cdr.KindDestroyed) < 2 {
		got = append(got, h.Take(t, 1)[0])
	}
	shapes := sourcetest.Shapes(got)
	require.NotEmpty(t, shapes, "delivered")
	first, last := want[0], want[len(want)-1]
	assert.Equal(t, first, shapes[0], "call_init for the number it came in on")
	end := shapes[len(shapes)-1]
	assert.Equal(t, cdr.CallHangup, end.Type)
	assert.Equal(t, []any{last.Number, last.Caller, last.ResultDisposition, true, last.Callflow[len(last.Callflow)-1]},
		[]any{end.Number, end.Caller, end.ResultDisposition, end.Answered, end.Callflow[len(end.Callflow)-1]},
		"answered by the extension it was transferred to")
}
