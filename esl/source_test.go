package esl

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/follow/followtest"
	"github.com/kanca/kanca/follow/sourcetest"
)

const failsafe = sourcetest.Failsafe

const traceDir = "../testdata/esl"

// fsServer is the switch name of the FreeSWITCH that recorded the traces.
const fsServer = "fs-capture"

// trace loads the events of one recorded scenario, by folder prefix, in the
// order the socket delivered them.
func trace(t testing.TB, prefix string) [][]byte { return sourcetest.Recording(t, traceDir, prefix) }

func allTraces(t testing.TB) map[string][][]byte { return sourcetest.Recordings(t, traceDir) }

// decodeSorted is what replay reads from events: put in Event-Sequence
// order by Reorder, then decoded.
func decodeSorted(t testing.TB, events [][]byte) []cdr.Input {
	t.Helper()
	sorted, err := io.ReadAll(Reorder(bytes.NewReader(append(bytes.Join(events, []byte("\n")), '\n'))))
	require.NoError(t, err)
	var out []cdr.Input
	for i, line := range bytes.Split(bytes.TrimSpace(sorted), []byte("\n")) {
		in, ok, err := Decode(line)
		require.NoError(t, err, "event %d", i)
		if ok {
			out = append(out, in)
		}
	}
	return out
}

type harness struct {
	*sourcetest.Run
	src  *Source
	logs *sourcetest.Logs
}

// start runs a Source against srv until the test ends. Events wait in the
// reorder buffer until a drop or the window releases them, never for a
// clock, so the order is exactly Reorder's. The emit buffer is large
// enough for any trace, so emit never blocks the source.
func start(t *testing.T, srv *esltest.Server, tweak func(*Config)) *harness {
	t.Helper()
	return startBuffered(t, srv, 10000, tweak)
}

// startBuffered is start with emit blocking once buf inputs wait untaken.
func startBuffered(t *testing.T, srv *esltest.Server, buf int, tweak func(*Config)) *harness {
	t.Helper()
	logs := &sourcetest.Logs{}
	cfg := Config{
		Addr:          srv.Addr,
		Password:      "ClueCon",
		Logger:        logs.Logger(),
		Backoff:       Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond},
		Timeout:       5 * time.Second,
		ProbeInterval: -1,
		ReorderWait:   time.Hour,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	src, err := New(cfg)
	require.NoError(t, err)
	return &harness{Run: sourcetest.Start(t, logs, buf, src.Run), src: src, logs: logs}
}

// waitFor blocks until cond holds on the fake server's state.
func waitFor(t *testing.T, srv *esltest.Server, cond func() bool) {
	t.Helper()
	sourcetest.WaitFor(t, srv.Stage, cond)
}

// playAfterList plays events once the source has listed channels for the
// nth time, so every event reaches it after its reconciliation.
func playAfterList(t *testing.T, srv *esltest.Server, n int, events ...[]byte) {
	t.Helper()
	sourcetest.PlayAfterList(t, srv.Stage, n, events...)
}

func newServer(t *testing.T, opts esltest.Options) *esltest.Server {
	srv := esltest.NewServer(opts)
	t.Cleanup(srv.Close)
	return srv
}

// Every recorded trace, streamed by the fake socket to the subscription
// the source makes, gives exactly the inputs replay decodes from the file.
func TestSourceReplaysEveryTrace(t *testing.T) {
	for name, events := range allTraces(t) {
		t.Run(name, func(t *testing.T) {
			want := decodeSorted(t, events)
			srv := newServer(t, esltest.Options{})
			// Cut the connection after the last event: a drop releases what
			// the reorder buffer holds, with no clock involved.
			srv.DropAfter(len(events), 0)
			h := start(t, srv, nil)
			playAfterList(t, srv, 1, events...)
			sourcetest.SameInputs(t, want, h.Take(t, len(want)))
			// Reconnected and reconciled: every channel had ended, so the
			// list adds nothing. Connected on the second connection says
			// when (the first is cut before a second is let in). Neither a
			// second listing (it may be the first connection's relist) nor
			// the source's count of reconnects would: on a loaded machine
			// the drop can land while the first connection is still
			// reconciling, and that connection never counted as up.
			waitFor(t, srv, func() bool { return srv.Connections() >= 2 })
			sourcetest.Eventually(t, func() bool { return h.src.Stats().Connected })
			assert.Empty(t, h.StopAndDrain())
			st := h.src.Stats()
			assert.Zero(t, st.Malformed)
			assert.Zero(t, st.Gone)
			assert.Zero(t, st.Adopted)
			assert.Equal(t, 2, srv.Connections(), "one reconnect, after the drop")
		})
	}
}

// The subscription asks for every event the decoder maps: checked on
// everything FreeSWITCH sent in the recordings.
func TestSubscriptionCoversTheDecoder(t *testing.T) {
	subscribed := map[string]bool{}
	for _, w := range Subscription {
		subscribed[w] = true
	}
	// The socket reads every word after CUSTOM as a subclass.
	custom := slices.Index(Subscription, "CUSTOM")
	require.Positive(t, custom)
	for i, w := range Subscription {
		assert.Equal(t, i > custom, strings.Contains(w, "::"), "%s: subclasses, and only they, follow CUSTOM", w)
	}
	mapped := 0
	for name, events := range allTraces(t) {
		for i, raw := range events {
			f, err := ParseJSON(raw)
			require.NoError(t, err)
			_, ok, err := DecodeFields(f)
			require.NoError(t, err, "%s event %d", name, i)
			if !ok {
				continue
			}
			mapped++
			key := f["event-name"]
			if key == "CUSTOM" {
				key = f["event-subclass"]
			}
			assert.True(t, subscribed[key], "%s event %d: %s is decoded but not subscribed", name, i, key)
		}
	}
	assert.Positive(t, mapped)
}

// index is the position of the first event after from matching name (and
// Channel-State, when state is set); -1 when none.
func index(t testing.TB, events [][]byte, from int, name, state string) int {
	for i := from; i < len(events); i++ {
		var e struct {
			Name  string `json:"Event-Name"`
			State string `json:"Channel-State"`
		}
		require.NoError(t, json.Unmarshal(events[i], &e))
		if e.Name == name && (state == "" || e.State == state) {
			return i
		}
	}
	return -1
}

// lastBridge is the index after the last CHANNEL_BRIDGE: the call is up
// and what follows is its hangup.
func lastBridge(t testing.TB, events [][]byte) int {
	n := -1
	for i := range events {
		if bytes.Contains(events[i], []byte(`"Event-Name":"CHANNEL_BRIDGE"`)) {
			n = i + 1
		}
	}
	require.Positive(t, n)
	return n
}

// freeswitch is this source and its fake, for the tests every source
// passes.
var freeswitch = sourcetest.PBX{
	Name: "FreeSWITCH",
	Start: func(t *testing.T) (*followtest.Stage, *sourcetest.Run, func() follow.Stats) {
		srv := newServer(t, esltest.Options{})
		h := start(t, srv, nil)
		return srv.Stage, h.Run, h.src.f.Stats
	},
	Decode: decodeSorted,
}

func TestSourceReportsChannelsGoneDuringADrop(t *testing.T) {
	events := trace(t, "f01")
	sourcetest.GoneDuringADrop(t, freeswitch, events, lastBridge(t, events))
}

func TestSourceAdoptsCallBornDuringADrop(t *testing.T) {
	first, second := trace(t, "f01"), trace(t, "f02")
	// The gap ends once the second call's inbound leg is routed: the
	// channel table then knows its caller and the number it dialled.
	k := index(t, second, 0, "CHANNEL_STATE", "CS_ROUTING") + 1
	require.Positive(t, k)
	adopted, born, after := sourcetest.BornDuringADrop(t, freeswitch, first, lastBridge(t, first), second, k)
	assert.Equal(t, fsServer, adopted.Server)
	assert.Equal(t, adopted.Channel.ID, adopted.Channel.LinkedID)
	assert.Equal(t, born[0].Channel.CallerNumber, adopted.Channel.CallerNumber)
	assert.Equal(t, "908508850000", adopted.Channel.Exten, "the number it was created for")
	assert.WithinDuration(t, born[0].Channel.Created, adopted.Channel.Created, time.Second, "the list has whole seconds")
	assert.False(t, adopted.Time.After(after[0].Time), "no later than the event that settled it")
}

// A call answered while kanca was away: the list shows both legs ACTIVE,
// and each gets its answer (KindState Up) before its first event since.
func TestSourceCatchesAnAnswerMissedInADrop(t *testing.T) {
	events := trace(t, "f01")
	n := index(t, events, 0, "CHANNEL_ANSWER", "")
	require.Positive(t, n)
	bridge := index(t, events, n, "CHANNEL_BRIDGE", "")
	require.Positive(t, bridge)
	before := decodeSorted(t, events[:n])
	after := decodeSorted(t, events[bridge:])

	srv := newServer(t, esltest.Options{})
	srv.DropAfter(n, bridge-n)
	h := start(t, srv, nil)
	connected := func() bool { return h.src.Stats().Connected }
	sourcetest.PlayWhenUp(t, srv.Stage, 1, connected, events[:bridge]...)
	sourcetest.SameInputs(t, before, h.Take(t, len(before)))
	// The drop after events[:n] must have happened before this one
	// replaces it: inputs can be taken before the fake has come to it.
	waitFor(t, srv, func() bool { return srv.Connections() >= 2 })
	srv.DropAfter(len(events), 0)
	// Once the second connection is up: a drop during its reconciliation
	// would lose the answers that the list told it.
	sourcetest.PlayWhenUp(t, srv.Stage, 2, connected, events[bridge:]...)

	got := h.Take(t, len(after)+2)
	var rest []cdr.Input
	answered := map[string]bool{}
	for _, in := range got {
		if in.Kind == cdr.KindState && in.Channel.State == "Up" && !answered[in.Channel.ID] {
			answered[in.Channel.ID] = true
			assert.Empty(t, inputsOf(rest, in.Channel.ID), "the answer comes before the leg's next event")
			continue
		}
		rest = append(rest, in)
	}
	assert.ElementsMatch(t, sourcetest.CreatedIDs(before), keys(answered))
	// Each leg's first event since the drop says it lived through it.
	sourcetest.SameInputs(t, sourcetest.Resumed(after, sourcetest.CreatedIDs(before)...), rest)
}

func inputsOf(ins []cdr.Input, id string) []cdr.Input {
	var out []cdr.Input
	for _, in := range ins {
		if in.Channel.ID == id {
			out = append(out, in)
		}
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSourceAdoptsChannelsRacingTheList plays a call before the source
// connects, so the socket streams it while the source waits for the
// channel list: a channel may then be both listed and announced by its own
// CHANNEL_CREATE, before or after the list. Each channel must be created
// exactly once, and every other input must be exactly the recorded one,
// wherever in the call the list falls.
func TestSourceAdoptsChannelsRacingTheList(t *testing.T) {
	events := trace(t, "f07b")
	want := decodeSorted(t, events)
	for _, delay := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			srv := newServer(t, esltest.Options{Pace: time.Millisecond, APIDelay: delay})
			srv.Play(events...)
			srv.DropAfter(len(events), 0)

			h := start(t, srv, nil)
			var got []cdr.Input
			for sourcetest.CountKind(got, cdr.KindDestroyed) < sourcetest.CountKind(want, cdr.KindDestroyed) {
				got = append(got, h.Take(t, 1)[0])
			}
			waitFor(t, srv, func() bool { return srv.Listings() >= 2 })
			got = append(got, h.StopAndDrain()...)
			sourcetest.SameInputs(t, sourcetest.WithoutCreated(want), sourcetest.WithoutCreated(got))
			assert.ElementsMatch(t, sourcetest.CreatedIDs(want), sourcetest.CreatedIDs(got))
			assert.Zero(t, h.src.Stats().Adopted, "every channel's CREATE came after the subscription")
		})
	}
}

func TestSourceKeepsRetryingARefusedPassword(t *testing.T) {
	const secret = "Wr0ng-Pa55-xyzzy"
	events := trace(t, "f05")
	want := decodeSorted(t, events)
	srv := newServer(t, esltest.Options{Password: "right"})

	h := start(t, srv, func(c *Config) { c.Password = secret })
	waitFor(t, srv, func() bool { return srv.Attempts() >= 3 })
	st := h.src.Stats()
	assert.False(t, st.Connected)
	assert.Contains(t, st.LastError, "refused the event socket password")
	assert.Zero(t, srv.Connections())

	// The operator fixes event_socket.conf.xml; the next attempt gets in.
	srv.SetPassword(secret)
	srv.DropAfter(len(events), 0)
	playAfterList(t, srv, 1, events...)
	sourcetest.SameInputs(t, want, h.Take(t, len(want)))
	h.Stop()
	logs := h.logs.String()
	assert.Contains(t, logs, "refused the event socket password")
	assert.Contains(t, logs, "level=ERROR")
	assert.NotContains(t, logs, secret)
	assert.NotContains(t, h.src.Stats().LastError, secret)
}

// A FreeSWITCH that stops answering without closing TCP is noticed by the
// liveness probe; the source reconnects once it answers again.
func TestSourceDropsAHungServer(t *testing.T) {
	events := trace(t, "f05")
	want := decodeSorted(t, events)
	srv := newServer(t, esltest.Options{})
	h := start(t, srv, func(c *Config) {
		c.ProbeInterval = 10 * time.Millisecond
		c.Timeout = 300 * time.Millisecond
	})
	waitFor(t, srv, func() bool { return srv.Listings() >= 1 })
	srv.Hang(0)
	// A second attempt means the source gave up on the first connection.
	waitFor(t, srv, func() bool { return srv.Attempts() >= 2 })
	srv.Resume()
	srv.DropAfter(len(events), 0)
	playAfterList(t, srv, 2, events...)
	sourcetest.SameInputs(t, want, h.Take(t, len(want)))
	h.Stop()
	assert.Contains(t, h.logs.String(), "FreeSWITCH stopped answering")
	assert.GreaterOrEqual(t, h.src.Stats().Reconnects, uint64(1))
}

// TestSourceBackPressure holds emit while FreeSWITCH keeps sending and the
// probe keeps asking (nobody reads its answers while emit holds): every
// input must still arrive, in order, on the same connection.
func TestSourceBackPressure(t *testing.T) {
	events := trace(t, "f05") // small enough for the socket buffers to take whole
	want := decodeSorted(t, events)
	srv := newServer(t, esltest.Options{})
	h := startBuffered(t, srv, 0, func(c *Config) {
		c.ProbeInterval = 5 * time.Millisecond
		c.Timeout = 200 * time.Millisecond
		c.ReorderWait = time.Millisecond
	})
	playAfterList(t, srv, 1, events...)
	got := h.Take(t, 1)
	waitFor(t, srv, func() bool { return srv.Pos() == len(events) })
	time.Sleep(300 * time.Millisecond) // several probe timeouts with emit held
	got = append(got, h.Take(t, len(want)-1)...)
	assert.ElementsMatch(t, want, got)
	assert.Zero(t, h.src.Stats().Reconnects)
	assert.Equal(t, 1, srv.Connections())
}

// On a quiet switch the reorder buffer lets its events go after
// ReorderWait, without a drop or more events behind them.
func TestSourceReleasesHeldEventsOnAQuietSwitch(t *testing.T) {
	events := trace(t, "f05")
	want := decodeSorted(t, events)
	srv := newServer(t, esltest.Options{})
	h := start(t, srv, func(c *Config) { c.ReorderWait = time.Millisecond })
	playAfterList(t, srv, 1, events...)
	assert.ElementsMatch(t, want, h.Take(t, len(want)))
	assert.Empty(t, h.StopAndDrain())
	assert.Equal(t, 1, srv.Connections())
}

func TestSourceSkipsMalformedEvents(t *testing.T) {
	events := trace(t, "f05")
	want := decodeSorted(t, events)
	var last struct {
		Seq string `json:"Event-Sequence"`
	}
	require.NoError(t, json.Unmarshal(events[len(events)-1], &last))
	script := append(append([][]byte{}, events...),
		// Subscribed, numbered, but without the time every input needs.
		[]byte(`{"Event-Name":"CHANNEL_ANSWER","Unique-ID":"x","Event-Sequence":"9`+last.Seq+`"}`),
		// Subscribed and fine, but nothing the tracker needs.
		[]byte(`{"Event-Name":"CUSTOM","Event-Subclass":"callcenter::info","CC-Action":"members-count","Event-Sequence":"99`+last.Seq+`"}`),
	)
	srv := newServer(t, esltest.Options{})
	srv.DropAfter(len(script), 0)
	h := start(t, srv, nil)
	playAfterList(t, srv, 1, script...)
	sourcetest.SameInputs(t, want, h.Take(t, len(want)))
	waitFor(t, srv, func() bool { return srv.Listings() >= 2 })
	assert.Empty(t, h.StopAndDrain())
	st := h.src.Stats()
	assert.Equal(t, uint64(1), st.Malformed)
	assert.Equal(t, uint64(1), st.ByName["CUSTOM callcenter::info"])
	assert.Equal(t, uint64(countName(events, "CHANNEL_ANSWER")+1), st.ByName["CHANNEL_ANSWER"])
	assert.Contains(t, h.logs.String(), "malformed")
}

// Channels kanca followed when it last stopped (from its journal) and
// that ended meanwhile are reported gone by the first reconciliation.
func TestSourceSeededChannelsGoneAtStart(t *testing.T) {
	events := trace(t, "f01")
	before := decodeSorted(t, events[:lastBridge(t, events)])
	var seed []cdr.Input
	for _, in := range before {
		if in.Kind == cdr.KindCreated {
			seed = append(seed, in)
		}
	}
	require.Len(t, seed, 2)
	srv := newServer(t, esltest.Options{})
	logs := &sourcetest.Logs{}
	src, err := New(Config{Addr: srv.Addr, Password: "ClueCon", ProbeInterval: -1,
		Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	src.Seed(seed)
	got := make(chan cdr.Input, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, func(in cdr.Input) { got <- in }) }()
	waitFor(t, srv, func() bool { return srv.Listings() >= 1 })
	for _, want := range seed {
		var in cdr.Input
		select {
		case in = <-got:
		case <-time.After(failsafe):
			require.FailNow(t, "no gone input", logs.String())
		}
		assert.Equal(t, cdr.KindGone, in.Kind)
		assert.Equal(t, want.Channel.ID, in.Channel.ID)
		assert.True(t, seed[1].Time.Equal(in.Time), "at the latest time seeded")
	}
	cancel()
	require.NoError(t, <-done)
}

func countName(events [][]byte, name string) int {
	n := 0
	for _, e := range events {
		if bytes.Contains(e, []byte(`"Event-Name":"`+name+`"`)) {
			n++
		}
	}
	return n
}

func TestNewChecksConfig(t *testing.T) {
	s, err := New(Config{Password: "p"})
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8021", s.Addr())

	for _, bad := range []Config{
		{Addr: "pbx", Password: "hunter2"},
		{Addr: ":8021", Password: "hunter2"},
		{Addr: "pbx:8021"},
		{Addr: "pbx:8021", Password: "hunter2\nevent json ALL"},
	} {
		_, err := New(bad)
		require.Error(t, err, "%+v", bad)
		assert.NotContains(t, err.Error(), "hunter2")
	}
}

func TestParseChannels(t *testing.T) {
	rows, err := parseChannels("{\"row_count\": 0}\n")
	require.NoError(t, err)
	assert.Empty(t, rows)
	for _, bad := range []string{"", "-ERR SQL DISABLED NO DATA AVAILABLE!\n", `{"rows":[]}`, `[]`} {
		_, err := parseChannels(bad)
		assert.ErrorIs(t, err, ErrMalformed, bad)
	}
	rows, err = parseChannels(`{"row_count":2,"rows":[` +
		`{"uuid":"a","direction":"inbound","created_epoch":"1795351553","name":"sofia/internal/905321234567@127.0.0.1:5180","state":"CS_EXECUTE","cid_name":"905321234567","cid_num":"905321234567","dest":"1000","context":"capture","hostname":"fs","callstate":"ACTIVE","call_uuid":"a","initial_dest":"908508850000"},` +
		`{"uuid":"b","direction":"outbound","created_epoch":"1795351554","name":"sofia/internal/1000@127.0.0.1:5171","callstate":"RINGING","call_uuid":"a","dest":"1000","hostname":"fs"}]}`)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	a, b := rows[0].channel(), rows[1].channel()
	assert.Equal(t, cdr.Channel{ID: "a", Name: "sofia/internal/905321234567@127.0.0.1:5180", LinkedID: "a", State: "Up",
		CallerNumber: "905321234567", CallerName: "905321234567", DialedNumber: "908508850000", Context: "capture",
		Exten: "908508850000", Created: time.Unix(1795351553, 0)}, a)
	assert.Equal(t, "a", b.LinkedID, "an originated leg belongs to its A-leg's call")
	assert.Equal(t, "Ringing", b.State)
	assert.Equal(t, "1000", b.Exten)
}
