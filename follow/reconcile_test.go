package follow

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

// played is the smallest adapter there is: a PBX that lists channels once
// and then says what it is given, as a recording would.
type played struct {
	list   Listing
	inputs chan cdr.Input
	closed chan struct{}
}

func (p *played) List(context.Context) (Listing, error) { return p.list, nil }

func (p *played) Next(ctx context.Context, dst []cdr.Input) ([]cdr.Input, error) {
	select {
	case in := <-p.inputs:
		return append(dst, in), nil
	case <-p.closed:
		return dst, errors.New("closed")
	case <-ctx.Done():
		return dst, ctx.Err()
	}
}

func (p *played) Probe(context.Context) error { return nil }
func (p *played) Close(error)                 {}

// follow runs a Follower seeded with seed over one session listing l, and
// returns what it emitted after the session's inputs were handled.
func follow(t *testing.T, seed []cdr.Input, l Listing, ins ...cdr.Input) []cdr.Input {
	t.Helper()
	p := &played{list: l, inputs: make(chan cdr.Input, len(ins)), closed: make(chan struct{})}
	for _, in := range ins {
		p.inputs <- in
	}
	dialed := false
	f := New(Config{Name: "test", PBX: "Test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		func(ctx context.Context) (Session, error) {
			if dialed {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			dialed = true
			return p, nil
		})
	f.Seed(seed)
	want := len(ins)
	var got []cdr.Input
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- f.Run(ctx, func(in cdr.Input) {
			got = append(got, in)
			if in.Kind != cdr.KindGone && in.Time.Equal(ins[len(ins)-1].Time) && in.Kind == ins[len(ins)-1].Kind {
				want = 0
				cancel()
			}
		})
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not end")
	}
	require.Zero(t, want, "the last input was emitted")
	return got
}

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func ch(id, state string, created time.Time) cdr.Channel {
	return cdr.Channel{ID: id, Name: "SIP/" + id, State: state, Created: created}
}

// After a gap: a remembered channel no longer listed is gone at the last
// time seen; a listed one nobody knew is adopted before its first input,
// at the list's clock; a state change the list shows is told before the
// channel's next input that shows it happened.
func TestReconcileExactList(t *testing.T) {
	seed := []cdr.Input{
		{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: ch("a", "Ring", t0)},
		{Kind: cdr.KindCreated, Time: t0.Add(time.Second), Server: "pbx", Channel: ch("b", "Ring", t0.Add(time.Second))},
	}
	at := t0.Add(time.Minute)
	l := Listing{At: at, Channels: []Listed{
		{Channel: ch("b", "Up", t0.Add(time.Second)), Server: "pbx"},
		{Channel: ch("c", "Ring", t0.Add(30*time.Second)), Server: "pbx"},
	}}
	later := at.Add(5 * time.Second)
	got := follow(t, seed, l,
		cdr.Input{Kind: cdr.KindVar, Time: later, Server: "pbx", Channel: ch("c", "Ring", t0.Add(30*time.Second))},
		cdr.Input{Kind: cdr.KindHangupRequest, Time: later.Add(time.Second), Server: "pbx", Channel: ch("b", "Up", t0.Add(time.Second))},
	)
	require.Len(t, got, 5)
	assert.Equal(t, cdr.Input{Kind: cdr.KindGone, Time: seed[1].Time, Server: "pbx", Channel: seed[0].Channel}, got[0],
		"gone at the latest time seeded, with the last snapshot")
	assert.Equal(t, cdr.Input{Kind: cdr.KindCreated, Time: at, Server: "pbx", Channel: l.Channels[1].Channel, Adopted: true}, got[1],
		"adopted before its first input, at the list's clock")
	assert.Equal(t, cdr.KindVar, got[2].Kind)
	assert.Equal(t, cdr.Input{Kind: cdr.KindState, Time: at, Server: "pbx", Channel: l.Channels[0].Channel, Adopted: true}, got[3],
		"answered in the gap, told before the input that shows it")
	assert.Equal(t, cdr.KindHangupRequest, got[4].Kind)
}

// A channel whose creation comes after the list was born after the
// subscription: its own inputs tell it, nothing is adopted. A state
// change whose own input follows is not told twice.
func TestReconcileListRacingTheStream(t *testing.T) {
	seed := []cdr.Input{{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: ch("a", "Ring", t0)}}
	at := t0.Add(time.Minute)
	l := Listing{At: at, Channels: []Listed{
		{Channel: ch("a", "Up", t0), Server: "pbx"},
		{Channel: ch("c", "Ring", at), Server: "pbx"},
	}}
	ins := []cdr.Input{
		{Kind: cdr.KindState, Time: at, Server: "pbx", Channel: ch("a", "Up", t0)},
		{Kind: cdr.KindCreated, Time: at, Server: "pbx", Channel: ch("c", "Ring", at)},
		{Kind: cdr.KindDestroyed, Time: at.Add(time.Second), Server: "pbx", Channel: ch("c", "Ring", at)},
	}
	want := slices.Clone(ins)
	want[0].Resumed = true // a lived through the gap; c was born after it
	assert.Equal(t, want, follow(t, seed, l, ins...))
}

// A coarse list (its states rougher than the events') tells only a missed
// answer, on the remembered snapshot; a channel whose end was read before
// the list is not reported gone: its own inputs say when it ended.
func TestReconcileCoarseListAndEndedChannels(t *testing.T) {
	a := ch("a", "Ring", t0)
	a.CallerNumber = "905321234567"
	seed := []cdr.Input{
		{Kind: cdr.KindCreated, Time: t0, Server: "fs", Channel: a},
		{Kind: cdr.KindCreated, Time: t0, Server: "fs", Channel: ch("b", "Ring", t0)},
		{Kind: cdr.KindCreated, Time: t0, Server: "fs", Channel: ch("e", "Up", t0)},
	}
	l := Listing{Coarse: true, Ended: map[string]bool{"e": true}, Channels: []Listed{
		{Channel: ch("a", "Up", t0), Server: "fs"},
		{Channel: ch("b", "Ringing", t0), Server: "fs"},
	}}
	then := t0.Add(time.Minute)
	answered := a
	answered.State = "Up"
	got := follow(t, seed, l,
		cdr.Input{Kind: cdr.KindDestroyed, Time: then, Server: "fs", Channel: ch("e", "Up", t0)},
		cdr.Input{Kind: cdr.KindHangupRequest, Time: then, Server: "fs", Channel: ch("b", "", t0)},
		cdr.Input{Kind: cdr.KindHangupRequest, Time: then.Add(time.Second), Server: "fs", Channel: cdr.Channel{ID: "a", Created: t0}},
	)
	require.Len(t, got, 4, "nothing gone, nothing told of b")
	assert.Equal(t, cdr.KindDestroyed, got[0].Kind)
	assert.Equal(t, cdr.KindHangupRequest, got[1].Kind)
	assert.Equal(t, cdr.Input{Kind: cdr.KindState, Time: t0, Server: "fs", Channel: answered, Adopted: true}, got[2],
		"the answer, on what was remembered, at the latest time seen")
	assert.Equal(t, "a", got[3].Channel.ID)
}

// A caller followed in a menu left it for an extension in the gap: the
// list shows it running Dial, and the leg it dialled, unknown, linked to
// it. The move is told before the dialled leg is adopted, whichever speaks
// first, so that leg joins the extension's step, not the menu's; a move
// whose own dialplan input follows the list is not told twice. The move
// is placed when the leg it made was created, so its step is told when it
// began: a list with a clock (ARI's) would place it at the list, late;
// one with none (FreeSWITCH's) at the last event heard, early.
func TestReconcileMoveInTheGap(t *testing.T) {
	caller := ch("a", "Up", t0)
	caller.Context, caller.Exten, caller.App, caller.AppData = "ivr-main", "s", "Background", "menu"
	seed := []cdr.Input{{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: caller}}
	at := t0.Add(time.Minute)
	dialling := caller
	dialling.Exten, dialling.App, dialling.AppData = "1", "Dial", "PJSIP/1000,20"
	made := t0.Add(30 * time.Second)
	callee := ch("b", "Up", made)
	callee.LinkedID = "a"
	for _, tt := range []struct {
		name  string
		clock time.Time // the list's
		moved time.Time // when the move is placed
	}{
		{"list with a clock", at, made},
		{"list with none", time.Time{}, made},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := Listing{At: tt.clock, Channels: []Listed{{Channel: dialling, Server: "pbx"}, {Channel: callee, Server: "pbx"}}}
			after := at.Add(5 * time.Second)
			got := follow(t, seed, l,
				cdr.Input{Kind: cdr.KindVar, Time: after, Server: "pbx", Channel: callee},
				cdr.Input{Kind: cdr.KindHangupRequest, Time: after.Add(time.Second), Server: "pbx", Channel: dialling},
			)
			require.Len(t, got, 4)
			assert.Equal(t, cdr.Input{Kind: cdr.KindDialplan, Time: tt.moved, Server: "pbx", Channel: dialling, Adopted: true}, got[0],
				"the caller's move first")
			assert.Equal(t, cdr.Input{Kind: cdr.KindCreated, Time: later(tt.clock, made), Server: "pbx", Channel: callee, Adopted: true}, got[1])
			assert.Equal(t, cdr.KindVar, got[2].Kind)
			assert.Equal(t, cdr.KindHangupRequest, got[3].Kind)
		})
	}

	// The move's own input after the list: the stream tells it.
	after := at.Add(5 * time.Second)
	ins := []cdr.Input{
		{Kind: cdr.KindDialplan, Time: after, Server: "pbx", Channel: dialling},
		{Kind: cdr.KindHangupRequest, Time: after.Add(time.Second), Server: "pbx", Channel: dialling},
	}
	want := slices.Clone(ins)
	want[0].Resumed = true
	assert.Equal(t, want, follow(t, seed, Listing{At: at, Channels: []Listed{{Channel: dialling, Server: "pbx"}}}, ins...))
}

// A leg born after the list of a listed channel still held for its next
// input (a ring group's callee legs created before the caller's own next
// event) adopts that channel first: it is older, and its call's.
func TestReconcileLegBornOfAHeldChannel(t *testing.T) {
	at := t0.Add(time.Minute)
	caller := ch("a", "Ring", t0.Add(30*time.Second))
	l := Listing{At: at, Channels: []Listed{{Channel: caller, Server: "pbx"}}}
	callee := ch("b", "Down", at.Add(time.Second))
	callee.LinkedID = "a"
	got := follow(t, nil, l,
		cdr.Input{Kind: cdr.KindCreated, Time: at.Add(time.Second), Server: "pbx", Channel: callee},
		cdr.Input{Kind: cdr.KindState, Time: at.Add(2 * time.Second), Server: "pbx", Channel: caller},
	)
	require.Len(t, got, 3)
	assert.Equal(t, cdr.Input{Kind: cdr.KindCreated, Time: at, Server: "pbx", Channel: caller, Adopted: true}, got[0],
		"the caller adopted before its callee's creation")
	assert.Equal(t, cdr.KindCreated, got[1].Kind)
	assert.Equal(t, "b", got[1].Channel.ID)
	assert.Equal(t, cdr.KindState, got[2].Kind)
}

// A list's creation times may be whole seconds: a callee's leg born in
// its caller's second, with an id that sorts first, is still adopted
// after the caller, whose call it belongs to.
func TestReconcileAdoptsTheLegOthersLinkToFirst(t *testing.T) {
	at := t0.Add(time.Minute)
	caller := ch("b-caller", "Up", t0)
	caller.LinkedID = caller.ID
	callee := ch("a-callee", "Ringing", t0)
	callee.LinkedID = caller.ID
	l := Listing{At: at, Channels: []Listed{{Channel: callee, Server: "pbx"}, {Channel: caller, Server: "pbx"}}}
	got := follow(t, nil, l, cdr.Input{Kind: cdr.KindState, Time: at.Add(time.Second), Server: "pbx", Channel: callee})
	require.Len(t, got, 3)
	assert.Equal(t, "b-caller", got[0].Channel.ID, "the caller first")
	assert.Equal(t, "a-callee", got[1].Channel.ID)
}

// A coarse list tells a move by the application alone (its numbers are
// not the events'), on the remembered snapshot; an event that names no
// application leaves the channel running what it ran.
func TestReconcileCoarseListMove(t *testing.T) {
	a := ch("a", "Up", t0)
	a.Exten, a.App, a.AppData = "908508850001", "ivr", "capture_ivr"
	answered := a
	answered.App, answered.AppData = "", "" // FreeSWITCH's CHANNEL_ANSWER names none
	seed := []cdr.Input{
		{Kind: cdr.KindCreated, Time: t0, Server: "fs", Channel: a},
	}
	listed := a
	listed.Exten, listed.App, listed.AppData = "1000", "bridge", "user/1000"
	l := Listing{Coarse: true, Channels: []Listed{{Channel: listed, Server: "fs"}}}
	then := t0.Add(time.Minute)
	moved := a
	moved.App, moved.AppData = "bridge", "user/1000"
	got := follow(t, append(seed, cdr.Input{Kind: cdr.KindState, Time: t0, Server: "fs", Channel: answered}), l,
		cdr.Input{Kind: cdr.KindHangupRequest, Time: then, Server: "fs", Channel: cdr.Channel{ID: "a", Created: t0}},
	)
	require.Len(t, got, 2)
	assert.Equal(t, cdr.Input{Kind: cdr.KindDialplan, Time: t0, Server: "fs", Channel: moved, Adopted: true}, got[0],
		"the move, on what was remembered")
	assert.Equal(t, cdr.KindHangupRequest, got[1].Kind)
}

// relisting is a PBX whose second list fails after events were read
// while it waited: the session holds them, and Next hands them over with
// the connection's end.
type relisting struct {
	played
	lists int
	held  []cdr.Input
}

func (r *relisting) List(context.Context) (Listing, error) {
	r.lists++
	if r.lists == 1 {
		return r.list, nil
	}
	r.held = append(r.held, cdr.Input{Kind: cdr.KindDestroyed, Time: t0.Add(time.Second), Server: "pbx", Channel: ch("a", "Up", t0)})
	return Listing{}, errors.New("connection closed while listing")
}

func (r *relisting) Next(ctx context.Context, dst []cdr.Input) ([]cdr.Input, error) {
	if r.lists > 1 {
		return append(dst, r.held...), errors.New("closed")
	}
	return r.played.Next(ctx, dst)
}

// Events read while a second list waited for its answer are not lost
// when that list fails: the connection's end hands them over.
func TestRelistFailureLosesNothingRead(t *testing.T) {
	r := &relisting{played: played{inputs: make(chan cdr.Input, 1), closed: make(chan struct{})}}
	r.inputs <- cdr.Input{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: ch("a", "Ring", t0)}
	requireCreatedThenDestroyed(t, r, time.Nanosecond)
}

// requireCreatedThenDestroyed follows s and requires a channel's
// creation and then its end, which s read before its list failed, to be
// handed over.
func requireCreatedThenDestroyed(t *testing.T, s Session, relist time.Duration) {
	t.Helper()
	next, stop := followOnce(t, s, relist, nil)
	for _, want := range []cdr.Kind{cdr.KindCreated, cdr.KindDestroyed} {
		assert.Equal(t, want, next().Kind, "what the failed list's wait read")
	}
	stop()
}

// followOnce runs a Follower seeded with seed (none if nil) over s,
// dialled once: a later dial waits for the end. next returns its next
// input, failing the test after 5 s without one; stop ends it and requires
// a clean end.
func followOnce(t *testing.T, s Session, relist time.Duration, seed []cdr.Input) (next func() cdr.Input, stop func()) {
	t.Helper()
	got := make(chan cdr.Input, 16)
	dialed := false
	f := New(Config{Name: "test", PBX: "Test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Relist: relist},
		func(ctx context.Context) (Session, error) {
			if dialed {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			dialed = true
			return s, nil
		})
	if seed != nil {
		f.Seed(seed)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, func(in cdr.Input) { got <- in }) }()
	next = func() cdr.Input {
		select {
		case in := <-got:
			return in
		case <-time.After(5 * time.Second):
			t.Fatal("nothing emitted")
		}
		return cdr.Input{}
	}
	return next, func() {
		cancel()
		require.NoError(t, <-done)
	}
}

// Channels a list shows in one bridge are one call's legs: a leg whose
// call the PBX could not say (its linked id unread) is of the call of
// the oldest leg in its bridge, adopted with it, and once both are
// followed the bridge is told (the later leg bridged to the first), so
// the tracker knows who the call talks to. A lone bridged leg, or a
// bridge of channels all followed already, tells nothing.
func TestReconcileBridgedLegsAreOneCall(t *testing.T) {
	at := t0.Add(time.Minute)
	caller := ch("a", "Up", t0)
	caller.LinkedID = "a"
	callee := ch("b", "Up", t0.Add(time.Second)) // its linked id unread
	other := ch("c", "Up", t0.Add(2*time.Second))
	other.LinkedID = "c"
	l := Listing{At: at, Channels: []Listed{
		{Channel: callee, Server: "pbx", Bridge: "br1"},
		{Channel: other, Server: "pbx", Bridge: "br2"}, // alone in its bridge
		{Channel: caller, Server: "pbx", Bridge: "br1"},
	}}
	got := follow(t, nil, l,
		cdr.Input{Kind: cdr.KindVar, Time: at.Add(time.Second), Server: "pbx", Channel: callee},
		cdr.Input{Kind: cdr.KindVar, Time: at.Add(2 * time.Second), Server: "pbx", Channel: other},
	)
	require.Len(t, got, 7)
	joined := callee
	joined.LinkedID = "a"
	assert.Equal(t, cdr.Input{Kind: cdr.KindCreated, Time: at, Server: "pbx", Channel: caller, Adopted: true}, got[0])
	assert.Equal(t, cdr.Input{Kind: cdr.KindCreated, Time: at, Server: "pbx", Channel: joined, Adopted: true}, got[1],
		"of the call of the leg it is bridged with")
	assert.Equal(t, cdr.Input{Kind: cdr.KindBridgeEnter, Time: at, Server: "pbx", Channel: caller, Bridge: "br1", Adopted: true}, got[2])
	assert.Equal(t, cdr.Input{Kind: cdr.KindBridgeEnter, Time: at, Server: "pbx", Channel: joined, Bridge: "br1", Other: &caller, Adopted: true}, got[3],
		"bridged to the caller")
	assert.Equal(t, cdr.KindVar, got[4].Kind)
	assert.Equal(t, cdr.Input{Kind: cdr.KindCreated, Time: at, Server: "pbx", Channel: other, Adopted: true}, got[5], "nothing told of a lone leg's bridge")
	assert.Equal(t, cdr.KindVar, got[6].Kind)
}

// A list that does not name a channel's call (ARI's snapshots carry no
// linked id) leaves the call kanca remembers for it: a callee adopted
// after one gap (its call read from the PBX then, and journaled) and
// answered in a second is told answered before its caller's hangup ends
// the call, as any callee of the call is.
func TestReconcileKeepsTheCallItRemembersOfAListedChannel(t *testing.T) {
	caller := ch("a", "Up", t0)
	caller.LinkedID = "a"
	callee := ch("b", "Ringing", t0.Add(time.Second))
	callee.LinkedID = "a"
	seed := []cdr.Input{
		{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: caller, Adopted: true},
		{Kind: cdr.KindCreated, Time: t0.Add(time.Second), Server: "pbx", Channel: callee, Adopted: true},
	}
	at := t0.Add(time.Minute)
	listedCaller, listedCallee := ch("a", "Up", t0), ch("b", "Up", t0.Add(time.Second))
	l := Listing{At: at, Channels: []Listed{{Channel: listedCaller, Server: "pbx"}, {Channel: listedCallee, Server: "pbx"}}}
	got := follow(t, seed, l,
		cdr.Input{Kind: cdr.KindHangupRequest, Time: at.Add(time.Second), Server: "pbx", Channel: listedCaller},
	)
	require.Len(t, got, 2)
	answered := listedCallee
	answered.LinkedID = "a"
	assert.Equal(t, cdr.Input{Kind: cdr.KindState, Time: at, Server: "pbx", Channel: answered, Adopted: true}, got[0],
		"answered in the gap, told before its caller's hangup, of the call it is of")
	assert.Equal(t, cdr.KindHangupRequest, got[1].Kind)
}

// A listed caller still held when a Dial names it (the callee's creation
// and Dial heard, the caller's own next event not yet) is adopted before
// the Dial: the tracker joins a callee to the caller it knows. So is the
// call a held change of a channel names, before that change is told.
func TestReconcileAdoptsAHeldCallerBeforeWhatPresupposesIt(t *testing.T) {
	at := t0.Add(time.Minute)
	caller := ch("a", "Up", t0)
	caller.LinkedID = "a"
	l := Listing{At: at, Channels: []Listed{{Channel: caller, Server: "pbx"}}}
	callee := ch("b", "Down", at.Add(time.Second))
	got := follow(t, nil, l,
		cdr.Input{Kind: cdr.KindCreated, Time: at.Add(time.Second), Server: "pbx", Channel: callee},
		cdr.Input{Kind: cdr.KindDial, Time: at.Add(2 * time.Second), Server: "pbx", Channel: callee, Other: &caller},
	)
	require.Len(t, got, 3)
	assert.Equal(t, "b", got[0].Channel.ID, "a Down leg with no call says nothing of its caller")
	assert.Equal(t, cdr.Input{Kind: cdr.KindCreated, Time: at, Server: "pbx", Channel: caller, Adopted: true}, got[1],
		"adopted before the Dial that names it")
	assert.Equal(t, cdr.KindDial, got[2].Kind)

	// Seeded callee, answered in the gap: its held change names the
	// caller, held too, which is adopted first.
	seed := []cdr.Input{{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: ch("b", "Down", t0)}}
	listedCallee := ch("b", "Up", t0)
	listedCallee.LinkedID = "a"
	l = Listing{At: at, Channels: []Listed{{Channel: listedCallee, Server: "pbx"}, {Channel: caller, Server: "pbx"}}}
	got = follow(t, seed, l, cdr.Input{Kind: cdr.KindDialplan, Time: at.Add(time.Second), Server: "pbx", Channel: ch("b", "Up", t0)})
	require.Len(t, got, 3)
	assert.Equal(t, cdr.Input{Kind: cdr.KindCreated, Time: at, Server: "pbx", Channel: caller, Adopted: true}, got[0], "the call first")
	assert.Equal(t, cdr.Input{Kind: cdr.KindState, Time: at, Server: "pbx", Channel: listedCallee, Adopted: true}, got[1], "then the answer it was dialled for")
	assert.Equal(t, cdr.KindDialplan, got[2].Kind)
}

// With Settle, a change a list showed and no event has settled is told
// once Settle has passed, at the first input after it, so the journal
// holds it before the channel speaks again: a callee answered in a gap
// and quiet since is not lost to a crash before its next event. A
// listed channel nobody knew is adopted the same way.
func TestReconcileTellsWhatStaysHeldAfterSettle(t *testing.T) {
	caller := ch("a", "Up", t0)
	caller.LinkedID = "a"
	callee := ch("b", "Ringing", t0)
	callee.LinkedID = "a"
	seed := []cdr.Input{
		{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: caller},
		{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: callee},
	}
	at := t0.Add(time.Minute)
	answered := callee
	answered.State = "Up"
	newcomer := ch("c", "Ring", at)
	l := Listing{At: at, Channels: []Listed{{Channel: caller, Server: "pbx"}, {Channel: answered, Server: "pbx"}, {Channel: newcomer, Server: "pbx"}}}
	other := cdr.Input{Kind: cdr.KindCreated, Time: at.Add(time.Second), Server: "pbx", Channel: ch("d", "Ring", at.Add(time.Second))}

	p := &played{list: l, inputs: make(chan cdr.Input, 1), closed: make(chan struct{})}
	f := New(Config{Name: "test", PBX: "Test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Settle: 20 * time.Millisecond},
		func(ctx context.Context) (Session, error) {
			select {
			case <-p.closed:
				<-ctx.Done()
				return nil, ctx.Err()
			default:
			}
			close(p.closed)
			p.closed = make(chan struct{})
			return p, nil
		})
	f.Seed(seed)
	got := make(chan cdr.Input, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go f.Run(ctx, func(in cdr.Input) { got <- in })
	time.Sleep(50 * time.Millisecond)
	p.inputs <- other
	var ins []cdr.Input
	for len(ins) < 3 {
		select {
		case in := <-got:
			ins = append(ins, in)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %v", ins)
		}
	}
	assert.Equal(t, cdr.KindCreated, ins[0].Kind, "the input that came after Settle, first")
	assert.Equal(t, "d", ins[0].Channel.ID)
	told := map[string]cdr.Input{ins[1].Channel.ID: ins[1], ins[2].Channel.ID: ins[2]}
	assert.Equal(t, cdr.Input{Kind: cdr.KindState, Time: at, Server: "pbx", Channel: answered, Adopted: true}, told["b"], "the answer told")
	assert.Equal(t, cdr.Input{Kind: cdr.KindCreated, Time: at, Server: "pbx", Channel: newcomer, Adopted: true}, told["c"], "the newcomer adopted")
}

// relistedEnd is a PBX whose second list no longer shows a channel
// whose end it read while it waited for the answer (Listing.Ended).
type relistedEnd struct {
	played
	lists    int
	relisted chan struct{}
	ended    map[string]bool // what the second list read ended; default a
}

func (r *relistedEnd) List(context.Context) (Listing, error) {
	r.lists++
	if r.lists == 1 {
		return r.list, nil
	}
	if r.lists == 2 {
		close(r.relisted)
	}
	if r.ended != nil {
		return Listing{Coarse: true, Ended: r.ended}, nil
	}
	return Listing{Coarse: true, Ended: map[string]bool{"a": true}}, nil
}

// A change the first list showed (an answer in the gap) and no event
// settled yet survives a second list that no longer shows the channel
// because its end came while that list was taken: the end settles it,
// and the call knows the answer before it ends.
func TestRelistKeepsWhatItsEndSettles(t *testing.T) {
	ring := ch("a", "Ring", t0)
	up := ring
	up.State = "Up"
	r := &relistedEnd{played: played{list: Listing{Coarse: true, At: t0.Add(time.Second), Channels: []Listed{{Channel: up, Server: "fs"}}},
		inputs: make(chan cdr.Input, 2), closed: make(chan struct{})}, relisted: make(chan struct{})}
	r.inputs <- cdr.Input{Kind: cdr.KindDTMF, Time: t0.Add(2 * time.Second), Server: "fs", Channel: ch("b", "Up", t0)}
	next, stop := followOnce(t, r, time.Nanosecond, []cdr.Input{{Kind: cdr.KindCreated, Time: t0, Server: "fs", Channel: ring}})
	require.Equal(t, cdr.KindDTMF, next().Kind)
	<-r.relisted
	// The end names no state (FreeSWITCH's destroy of a leg whose
	// answer the stream never said).
	r.inputs <- cdr.Input{Kind: cdr.KindDestroyed, Time: t0.Add(3 * time.Second), Server: "fs", Channel: ch("a", "", t0)}
	answered := next()
	assert.Equal(t, cdr.KindState, answered.Kind, "the answer the first list showed, before the end")
	assert.Equal(t, "Up", answered.Channel.State)
	assert.Equal(t, cdr.KindDestroyed, next().Kind)
	stop()
}

// A bridge the first list showed, of channels held for adoption, is
// kept when a second list no longer shows them because their ends came
// while it was taken: adopted at their next input, they are told as
// bridged, as the first list said.
func TestRelistKeepsTheBridgeOfHeldChannels(t *testing.T) {
	a, b := ch("a", "Up", t0), ch("b", "Up", t0)
	a.LinkedID = "a"
	r := &relistedEnd{played: played{list: Listing{Coarse: true, At: t0.Add(time.Second), Channels: []Listed{
		{Channel: a, Server: "fs", Bridge: "x"}, {Channel: b, Server: "fs", Bridge: "x"}}},
		inputs: make(chan cdr.Input, 2), closed: make(chan struct{})}, relisted: make(chan struct{})}
	r.ended = map[string]bool{"a": true, "b": true}
	r.inputs <- cdr.Input{Kind: cdr.KindDTMF, Time: t0.Add(2 * time.Second), Server: "fs", Channel: ch("z", "Up", t0)}
	next, stop := followOnce(t, r, time.Nanosecond, nil)
	require.Equal(t, cdr.KindDTMF, next().Kind)
	<-r.relisted
	r.inputs <- cdr.Input{Kind: cdr.KindHangupRequest, Time: t0.Add(3 * time.Second), Server: "fs", Channel: a}
	var kinds []string
	for range 5 {
		in := next()
		kinds = append(kinds, in.Kind.String()+" "+in.Channel.ID)
	}
	assert.Equal(t, []string{"created a", "created b", "bridge_enter a", "bridge_enter b", "hangup_request a"}, kinds)
	stop()
}

// failingList is a PBX whose first list fails after events were read
// while it waited (the connection ended): the session holds them.
type failingList struct {
	closed bool
	held   []cdr.Input
}

func (r *failingList) List(context.Context) (Listing, error) {
	return Listing{}, errors.New("connection closed while listing")
}

func (r *failingList) Next(ctx context.Context, dst []cdr.Input) ([]cdr.Input, error) {
	if !r.closed {
		<-ctx.Done()
		return dst, ctx.Err()
	}
	held := r.held
	r.held = nil
	if len(held) == 0 {
		return dst, errors.New("closed")
	}
	return append(dst, held...), nil
}

func (r *failingList) Probe(context.Context) error { return nil }
func (r *failingList) Close(error)                 { r.closed = true }

// Events read while the first list of a connection waited for its answer
// are not lost when that list fails: they are handed over before the
// connection is given up.
func TestListFailureLosesNothingRead(t *testing.T) {
	r := &failingList{held: []cdr.Input{
		{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: ch("a", "Ring", t0)},
		{Kind: cdr.KindDestroyed, Time: t0.Add(time.Second), Server: "pbx", Channel: ch("a", "Ring", t0)},
	}}
	requireCreatedThenDestroyed(t, r, 0)
}

// A channel whose end was read is never adopted again, though a list
// taken after its end still shows it: FreeSWITCH's channel table keeps a
// leg until CHANNEL_DESTROY, after CHANNEL_HANGUP_COMPLETE, and lags its
// events besides. Adopted, it stood for a call of its own (a callee told
// as a second, missed call) or told its call twice.
func TestListNeverBringsBackAnEndedChannel(t *testing.T) {
	a := ch("a", "Up", t0)
	a.LinkedID = "a"
	p := &played{list: Listing{Coarse: true, At: t0.Add(time.Second), Channels: []Listed{{Channel: a, Server: "fs"}}},
		inputs: make(chan cdr.Input, 3), closed: make(chan struct{})}
	p.inputs <- cdr.Input{Kind: cdr.KindDestroyed, Time: t0.Add(2 * time.Second), Server: "fs", Channel: a} // hangup complete
	next, stop := followOnce(t, p, time.Nanosecond, []cdr.Input{{Kind: cdr.KindCreated, Time: t0, Server: "fs", Channel: a}})
	require.Equal(t, cdr.KindDestroyed, next().Kind)
	// The second list, taken now, still shows a.
	p.inputs <- cdr.Input{Kind: cdr.KindDestroyed, Time: t0.Add(3 * time.Second), Server: "fs", Channel: a} // destroy
	p.inputs <- cdr.Input{Kind: cdr.KindDTMF, Time: t0.Add(4 * time.Second), Server: "fs", Channel: ch("z", "Up", t0)}
	var kinds []string
	for range 2 {
		in := next()
		kinds = append(kinds, in.Kind.String()+" "+in.Channel.ID)
	}
	assert.Equal(t, []string{"destroyed a", "dtmf z"}, kinds)
	stop()
}

// reconnecting is a Follower whose connections are sessions, one after
// another, reconnecting at once; once they are all used, it waits.
func reconnecting(sessions ...Session) *Follower {
	return New(Config{Name: "test", PBX: "Test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Backoff: Backoff{Initial: time.Millisecond, Max: time.Millisecond}},
		func(ctx context.Context) (Session, error) {
			if len(sessions) == 0 {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			s := sessions[0]
			sessions = sessions[1:]
			return s, nil
		})
}

// The same holds across a reconnect: the first list of the next
// connection, lagging, still shows a leg whose end the last one read.
func TestReconnectListNeverBringsBackAnEndedChannel(t *testing.T) {
	a := ch("a", "Up", t0)
	a.LinkedID = "a"
	first := &played{list: Listing{Coarse: true, At: t0.Add(time.Second), Channels: []Listed{{Channel: a, Server: "fs"}}},
		inputs: make(chan cdr.Input, 1), closed: make(chan struct{})}
	first.inputs <- cdr.Input{Kind: cdr.KindDestroyed, Time: t0.Add(2 * time.Second), Server: "fs", Channel: a}
	second := &played{list: first.list, inputs: make(chan cdr.Input, 2), closed: make(chan struct{})}
	second.list.At = t0.Add(3 * time.Second)
	second.inputs <- cdr.Input{Kind: cdr.KindDestroyed, Time: t0.Add(3 * time.Second), Server: "fs", Channel: a}
	second.inputs <- cdr.Input{Kind: cdr.KindDTMF, Time: t0.Add(4 * time.Second), Server: "fs", Channel: ch("z", "Up", t0)}
	f := reconnecting(first, second)
	f.Seed([]cdr.Input{{Kind: cdr.KindCreated, Time: t0, Server: "fs", Channel: a}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan cdr.Input, 16)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, func(in cdr.Input) { got <- in }) }()
	var kinds []string
	for len(kinds) < 3 {
		select {
		case in := <-got:
			kinds = append(kinds, in.Kind.String()+" "+in.Channel.ID)
			if len(kinds) == 1 {
				close(first.closed) // the connection drops after the end
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing emitted after %v", kinds)
		}
	}
	assert.Equal(t, []string{"destroyed a", "destroyed a", "dtmf z"}, kinds)
	cancel()
	<-done
}

// A move the list shows is the gap's to tell when the channel's next
// event is an application of a later place in the dialplan (a parked
// caller bridged to its retriever, which renews its caller profile):
// placed when the PBX says the leg got there, before that event. An
// application of the listed place itself may be on its way to it, and
// tells the move.
func TestReconcileMoveBeforeALaterPlacesApplication(t *testing.T) {
	a := ch("a", "Up", t0)
	a.App, a.AppData, a.Routed = "bridge", "user/1000", t0
	seed := []cdr.Input{{Kind: cdr.KindCreated, Time: t0, Server: "fs", Channel: a}}
	listed := a
	listed.Exten, listed.App, listed.AppData, listed.Routed = "700", "valet_park", "lot auto in 701 720", t0.Add(4*time.Second)
	l := Listing{Coarse: true, Channels: []Listed{{Channel: listed, Server: "fs"}}}
	moved := a
	moved.App, moved.AppData, moved.Routed = listed.App, listed.AppData, listed.Routed

	bridged := a
	bridged.App, bridged.AppData, bridged.Routed = "uuid_bridge", "b", t0.Add(8*time.Second)
	got := follow(t, seed, l, cdr.Input{Kind: cdr.KindDialplan, Time: t0.Add(8 * time.Second), Server: "fs", Channel: bridged})
	require.Len(t, got, 2)
	assert.Equal(t, cdr.Input{Kind: cdr.KindDialplan, Time: listed.Routed, Server: "fs", Channel: moved, Adopted: true}, got[0],
		"the move, when the PBX says it happened")
	assert.Equal(t, "uuid_bridge", got[1].Channel.App)

	answer := listed
	answer.App, answer.AppData = "answer", ""
	got = follow(t, seed, l, cdr.Input{Kind: cdr.KindDialplan, Time: t0.Add(5 * time.Second), Server: "fs", Channel: answer})
	require.Len(t, got, 1, "the stream tells the move itself")
	assert.Equal(t, "answer", got[0].Channel.App)
}

// A bridge that formed in the gap is told when the PBX says it formed
// (FreeSWITCH's calls table, in whole seconds), not where the adoption
// of its legs is placed: an attended transfer completed in the gap joins
// the caller to its new party then.
func TestListedBridgeIsToldWhenItFormed(t *testing.T) {
	caller := ch("a", "Up", t0)
	caller.LinkedID = "a"
	seed := []cdr.Input{{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: caller}}
	callee := ch("b", "Up", t0.Add(30*time.Second))
	callee.LinkedID = "a"
	formed := t0.Add(40 * time.Second)
	l := Listing{Channels: []Listed{
		{Channel: caller, Server: "pbx", Bridge: "br1", BridgedAt: formed},
		{Channel: callee, Server: "pbx", Bridge: "br1", BridgedAt: formed},
	}}
	got := follow(t, seed, l, cdr.Input{Kind: cdr.KindVar, Time: t0.Add(50 * time.Second), Server: "pbx", Channel: callee})
	var enters []time.Time
	for _, in := range got {
		if in.Kind == cdr.KindBridgeEnter {
			enters = append(enters, in.Time)
		}
	}
	assert.Equal(t, []time.Time{formed, formed}, enters)
}

// The bridge a second list no longer shows, kept from the first, keeps
// when the first said it formed.
func TestRelistKeepsWhenTheBridgeFormed(t *testing.T) {
	a, b := ch("a", "Up", t0), ch("b", "Up", t0)
	a.LinkedID = "a"
	formed := t0.Add(1500 * time.Millisecond)
	r := &relistedEnd{played: played{list: Listing{Coarse: true, Channels: []Listed{
		{Channel: a, Server: "fs", Bridge: "x", BridgedAt: formed}, {Channel: b, Server: "fs", Bridge: "x", BridgedAt: formed}}},
		inputs: make(chan cdr.Input, 2), closed: make(chan struct{})}, relisted: make(chan struct{})}
	r.ended = map[string]bool{"a": true, "b": true}
	r.inputs <- cdr.Input{Kind: cdr.KindDTMF, Time: t0.Add(time.Second), Server: "fs", Channel: ch("z", "Up", t0)}
	next, stop := followOnce(t, r, time.Nanosecond, nil)
	require.Equal(t, cdr.KindDTMF, next().Kind)
	<-r.relisted
	r.inputs <- cdr.Input{Kind: cdr.KindHangupRequest, Time: t0.Add(3 * time.Second), Server: "fs", Channel: a}
	var enters []time.Time
	for range 5 {
		if in := next(); in.Kind == cdr.KindBridgeEnter {
			enters = append(enters, in.Time)
		}
	}
	assert.Equal(t, []time.Time{formed, formed}, enters)
	stop()
}

// A bridge of two followed channels that the gap hid (FreeSWITCH's g01:
// killed once the consultation answered, back after the transfer joined
// the caller to it with uuid_bridge, both listed moved there) is told
// with their moves, when the first of them speaks, before that input:
// the caller's end presupposes it.
func TestBridgeOfFollowedChannelsTheGapHidIsTold(t *testing.T) {
	caller := ch("a", "Up", t0)
	caller.LinkedID, caller.App, caller.AppData = "a", "bridge", "sofia/internal/1000"
	consult := ch("c", "Up", t0.Add(5*time.Second))
	consult.LinkedID = "b"
	seed := []cdr.Input{
		{Kind: cdr.KindDialplan, Time: t0, Server: "fs", Channel: caller},
		{Kind: cdr.KindState, Time: t0.Add(7 * time.Second), Server: "fs", Channel: consult},
	}
	movedCaller, movedConsult := caller, consult
	movedCaller.App, movedCaller.AppData = "uuid_bridge", "c"
	movedConsult.App, movedConsult.AppData = "uuid_bridge", "a"
	l := Listing{Coarse: true, Channels: []Listed{
		{Channel: movedCaller, Server: "fs", Bridge: "a"},
		{Channel: movedConsult, Server: "fs", Bridge: "a"},
	}}
	kinds := func(got []cdr.Input) (out []string) {
		for _, in := range got {
			out = append(out, fmt.Sprint(in.Kind, " ", in.Channel.ID, " ", in.Adopted))
		}
		return out
	}
	end := cdr.Input{Kind: cdr.KindHangupRequest, Time: t0.Add(20 * time.Second), Server: "fs", Channel: caller}
	assert.Equal(t, []string{
		"dialplan a true", "dialplan c true",
		"bridge_enter a true", "bridge_enter c true",
		"hangup_request a false",
	}, kinds(follow(t, seed, l, end)))

	// Unless the stream tells the bridge itself: the list raced it.
	enter := cdr.Input{Kind: cdr.KindBridgeEnter, Time: t0.Add(20 * time.Second), Server: "fs", Channel: caller, Bridge: "a", Other: &consult}
	assert.Equal(t, []string{"dialplan a true", "bridge_enter a false"}, kinds(follow(t, seed, l, enter)))
}

// A change a list showed and the connection dropped before any event or
// Settle told it is not lost to the next list, which no longer shows the
// channel because it ended in the second gap: a callee answered in the
// first gap keeps its answer, and a call begun in it is adopted, both
// before the ends the second list shows.
func TestReconnectKeepsWhatTheListBeforeTheDropShowed(t *testing.T) {
	caller := ch("a", "Up", t0)
	caller.LinkedID = "a"
	callee := ch("b", "Ringing", t0)
	callee.LinkedID = "a"
	at := t0.Add(time.Minute)
	answered := callee
	answered.State = "Up"
	newcomer := ch("c", "Ring", at)
	newcomer.LinkedID = "c"
	first := &played{list: Listing{At: at, Channels: []Listed{{Channel: caller, Server: "pbx"}, {Channel: answered, Server: "pbx"}, {Channel: newcomer, Server: "pbx"}}},
		inputs: make(chan cdr.Input), closed: make(chan struct{})}
	close(first.closed) // the connection drops as soon as it listed
	second := &played{list: Listing{At: at.Add(time.Minute)}, inputs: make(chan cdr.Input, 1), closed: make(chan struct{})}
	last := cdr.Input{Kind: cdr.KindDTMF, Time: at.Add(2 * time.Minute), Server: "pbx", Channel: ch("z", "Up", at)}
	second.inputs <- last
	f := reconnecting(first, second)
	f.Seed([]cdr.Input{
		{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: caller},
		{Kind: cdr.KindCreated, Time: t0, Server: "pbx", Channel: callee},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan cdr.Input, 16)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, func(in cdr.Input) { got <- in }) }()
	var told []string
	var answer cdr.Input
	for len(told) == 0 || told[len(told)-1] != "dtmf z" {
		select {
		case in := <-got:
			told = append(told, in.Kind.String()+" "+in.Channel.ID+" "+in.Channel.State)
			if in.Kind == cdr.KindState && in.Channel.ID == "b" {
				answer = in
			}
			if in.Kind == cdr.KindDTMF {
				told[len(told)-1] = "dtmf z"
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("nothing emitted after %v", told)
		}
	}
	cancel()
	<-done
	require.Len(t, told, 6)
	assert.ElementsMatch(t, []string{"state b Up", "created c Ring"}, told[:2], "told first, in either order: two calls")
	assert.Equal(t, []string{"gone a Up", "gone b Up", "gone c Ring", "dtmf z"}, told[2:])
	assert.Equal(t, at, answer.Time, "the answer placed at the list that showed it")
}

// The link says since when it is down, as well as since when it is up.
func TestLinkSaysSinceWhenItIsDown(t *testing.T) {
	p := &played{inputs: make(chan cdr.Input), closed: make(chan struct{})}
	f := reconnecting(p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	go f.Run(ctx, func(cdr.Input) {})
	require.Eventually(t, func() bool { return f.Stats().Connected }, 5*time.Second, time.Millisecond)
	up := f.Stats()
	assert.True(t, up.Down.IsZero())
	assert.False(t, up.Since.Before(start))

	close(p.closed)
	require.Eventually(t, func() bool { return !f.Stats().Connected }, 5*time.Second, time.Millisecond)
	down := f.Stats()
	assert.True(t, down.Since.IsZero())
	assert.False(t, down.Down.Before(up.Since), "down since the connection ended")
}
