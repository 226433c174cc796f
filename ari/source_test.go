package ari

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/follow/followtest"
	"github.com/kanca/kanca/follow/sourcetest"
)

const failsafe = sourcetest.Failsafe

type harness struct {
	*sourcetest.Run
	src  *Source
	logs *sourcetest.Logs
}

// start runs a Source against srv until the test ends. The emit buffer is
// large enough for any script used here, so emit never blocks the source.
func start(t *testing.T, url string, tweak func(*Config)) *harness {
	t.Helper()
	return startBuffered(t, url, 10000, tweak)
}

// startBuffered is start with emit blocking once buf inputs wait untaken.
func startBuffered(t *testing.T, url string, buf int, tweak func(*Config)) *harness {
	t.Helper()
	logs := &sourcetest.Logs{}
	cfg := Config{
		URL:          url,
		User:         "kanca",
		Password:     "kanca",
		Logger:       logs.Logger(),
		Backoff:      Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond},
		HTTPTimeout:  5 * time.Second,
		PingInterval: -1,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	src, err := New(cfg)
	require.NoError(t, err)
	return &harness{Run: sourcetest.Start(t, logs, buf, src.Run), src: src, logs: logs}
}

// waitFor blocks until cond holds on the fake server's state.
func waitFor(t *testing.T, srv *aritest.Server, cond func() bool) {
	t.Helper()
	sourcetest.WaitFor(t, srv.Stage, cond)
}

func TestSourceReplaysEveryFrameInOrder(t *testing.T) {
	frames := scenario(t, "s01")
	want := decodeAll(t, frames)
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)

	h := start(t, srv.URL, nil)
	playAfterList(t, srv, 1, frames...)
	got := h.Take(t, len(want))
	sourcetest.SameInputs(t, want, got)
	// The recording ends with frames that map to nothing; wait until they
	// were read too.
	sourcetest.Eventually(t, func() bool { return h.src.Stats().Frames == uint64(len(frames)) })
	assert.True(t, h.src.Stats().Connected)
	assert.Empty(t, h.StopAndDrain(), "nothing beyond the decoded frames")

	st := h.src.Stats()
	assert.Zero(t, st.Malformed)
	assert.Zero(t, st.Unknown)
	assert.Zero(t, st.Reconnects)
	assert.False(t, st.Connected)
	var byType = map[string]uint64{}
	for _, f := range frames {
		var head struct{ Type string }
		require.NoError(t, json.Unmarshal(f, &head))
		byType[head.Type]++
	}
	assert.Equal(t, byType, st.ByType)
	assert.Equal(t, 1, srv.Connections())
}

// lastBridgeEnter is the index after the last ChannelEnteredBridge: the call
// is up and everything after it is the hangup.
func lastBridgeEnter(t *testing.T, frames [][]byte) int {
	n := -1
	for i, f := range frames {
		if bytes.Contains(f, []byte(`"type":"ChannelEnteredBridge"`)) {
			n = i + 1
		}
	}
	require.Positive(t, n)
	return n
}

// asterisk is this source and its fake, for the tests every source passes.
var asterisk = sourcetest.PBX{
	Name: "Asterisk",
	Start: func(t *testing.T) (*followtest.Stage, *sourcetest.Run, func() follow.Stats) {
		srv := aritest.NewServer(aritest.Options{})
		t.Cleanup(srv.Close)
		h := start(t, srv.URL, nil)
		return srv.Stage, h.Run, h.src.f.Stats
	},
	Decode: decodeAll,
}

func TestSourceReportsChannelsGoneDuringADrop(t *testing.T) {
	frames := scenario(t, "s01")
	sourcetest.GoneDuringADrop(t, asterisk, frames, lastBridgeEnter(t, frames))
}

func TestSourceAdoptsCallBornDuringADrop(t *testing.T) {
	first, second := scenario(t, "s01"), scenario(t, "s02")
	// The gap ends just after the second call's inbound leg is created.
	k := 0
	for !bytes.Contains(second[k], []byte(`"type":"ChannelCreated"`)) {
		k++
	}
	adopted, born, _ := sourcetest.BornDuringADrop(t, asterisk, first, lastBridgeEnter(t, first), second, k+1)
	assert.False(t, adopted.Time.After(sourcetest.Latest(born)), "no later than Asterisk's clock at the list")
}

// TestSourceAdoptsChannelsRacingTheList plays a call before the source
// connects, so Asterisk streams it while the source takes the channel list:
// a channel may then be both listed and later announced by its own
// ChannelCreated. Each channel must be created exactly once, and every other
// input must be exactly the recorded one.
func TestSourceAdoptsChannelsRacingTheList(t *testing.T) {
	frames := scenario(t, "s01")
	want := decodeAll(t, frames)
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)
	srv.Play(frames...)

	h := start(t, srv.URL, nil)
	var got []cdr.Input
	for sourcetest.CountKind(got, cdr.KindDestroyed) < sourcetest.CountKind(want, cdr.KindDestroyed) {
		got = append(got, h.Take(t, 1)[0])
	}
	got = append(got, h.StopAndDrain()...)
	sourcetest.SameInputs(t, sourcetest.WithoutCreated(want), sourcetest.WithoutCreated(got))
	assert.ElementsMatch(t, sourcetest.CreatedIDs(want), sourcetest.CreatedIDs(got))
}

// playAfterList plays frames once the source has listed channels for the
// nth time, so every frame reaches it after its reconciliation.
func playAfterList(t *testing.T, srv *aritest.Server, n int, frames ...[]byte) {
	t.Helper()
	sourcetest.PlayAfterList(t, srv.Stage, n, frames...)
}

func TestSourceKeepsRetryingRefusedCredentials(t *testing.T) {
	const secret = "Wr0ng-Pa55-xyzzy"
	frames := scenario(t, "s05")
	want := decodeAll(t, frames)
	srv := aritest.NewServer(aritest.Options{User: "kanca", Password: "right"})
	t.Cleanup(srv.Close)

	h := start(t, srv.URL, func(c *Config) { c.Password = secret })
	waitFor(t, srv, func() bool { return srv.Attempts() >= 3 })
	st := h.src.Stats()
	assert.False(t, st.Connected)
	assert.Contains(t, st.LastError, "refused the ARI credentials")
	assert.Zero(t, srv.Connections())

	// The operator fixes ari.conf; the next attempt gets in.
	srv.SetAuth("kanca", secret)
	playAfterList(t, srv, 1, frames...)
	sourcetest.SameInputs(t, want, h.Take(t, len(want)))
	assert.Equal(t, 1, srv.Connections())
	h.Stop()
	logs := h.logs.String()
	assert.Contains(t, logs, "refused the ARI credentials")
	assert.NotContains(t, logs, secret)
	assert.NotContains(t, h.src.Stats().LastError, secret)
}

func TestSourceRetriesThroughServerErrorsAndHangs(t *testing.T) {
	frames := scenario(t, "s05")
	want := decodeAll(t, frames)
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)
	srv.FailNext(3, http.StatusInternalServerError)
	srv.HangNext(1, time.Hour) // only the client's handshake timeout ends it

	h := start(t, srv.URL, func(c *Config) { c.HTTPTimeout = 200 * time.Millisecond })
	playAfterList(t, srv, 1, frames...)
	sourcetest.SameInputs(t, want, h.Take(t, len(want)))
	assert.Equal(t, 5, srv.Attempts(), "three 500s, one hang, then the connection")
	assert.Equal(t, 1, srv.Connections())
	h.Stop()
	assert.Contains(t, h.logs.String(), "500")
}

func TestSourceSkipsUnknownAndMalformedFrames(t *testing.T) {
	frames := scenario(t, "s05")
	want := decodeAll(t, frames)
	mid := len(frames) / 2
	var script [][]byte
	script = append(script, frames[:mid]...)
	script = append(script,
		[]byte(`{"type":"ChannelTeleported","timestamp":"2026-11-22T12:10:00.000+0000","asterisk_id":"x"}`),
		[]byte(`{"type":"ChannelCreated","timestamp":"2026-11-22T12:10:00.000+0000","channel":{"id":`),
	)
	script = append(script, frames[mid:]...)
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)

	h := start(t, srv.URL, nil)
	playAfterList(t, srv, 1, script...)
	sourcetest.SameInputs(t, want, h.Take(t, len(want)))
	sourcetest.Eventually(t, func() bool { return h.src.Stats().Frames == uint64(len(script)) })
	assert.Empty(t, h.StopAndDrain())
	st := h.src.Stats()
	assert.Equal(t, uint64(len(script)), st.Frames)
	assert.Equal(t, uint64(1), st.Unknown)
	assert.Equal(t, uint64(1), st.ByType["ChannelTeleported"])
	assert.Equal(t, uint64(1), st.Malformed)
	assert.Zero(t, st.Reconnects, "a bad frame does not cost the connection")
	assert.Contains(t, h.logs.String(), "malformed")
}

// TestSourceDropsSilentPeer serves a WebSocket that never reads, so pings
// go unanswered: the source must give up on it and reconnect.
func TestSourceDropsSilentPeer(t *testing.T) {
	var accepted atomic.Int32
	again := make(chan struct{}, 10)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ari/channels", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`[]`))
	})
	mux.HandleFunc("GET /ari/events", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		accepted.Add(1)
		again <- struct{}{}
		<-release
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	h := start(t, srv.URL, func(c *Config) {
		c.PingInterval = 10 * time.Millisecond
		c.HTTPTimeout = 50 * time.Millisecond
	})
	for range 2 {
		select {
		case <-again:
		case <-time.After(failsafe):
			t.Fatalf("only %d connections; logs:\n%s", accepted.Load(), h.logs.String())
		}
	}
	h.Stop()
	assert.Contains(t, h.logs.String(), "stopped answering pings")
}

// TestSourceBackPressure holds emit while Asterisk keeps sending and while
// keepalive pings go unanswered (nobody reads the pongs during emit): every
// input must still arrive, in order, on the same connection.
func TestSourceBackPressure(t *testing.T) {
	frames := scenario(t, "s01")
	want := decodeAll(t, frames)
	srv := aritest.NewServer(aritest.Options{})
	t.Cleanup(srv.Close)

	h := startBuffered(t, srv.URL, 0, func(c *Config) {
		c.PingInterval = 5 * time.Millisecond
		// Short enough for pings to time out while emit holds, long enough
		// for a loaded machine to answer one the loop waits for.
		c.HTTPTimeout = 200 * time.Millisecond
	})
	playAfterList(t, srv, 1, frames...)
	got := h.Take(t, 1)
	waitFor(t, srv, func() bool { return srv.Pos() == len(frames) })
	time.Sleep(300 * time.Millisecond) // several ping timeouts with emit held
	got = append(got, h.Take(t, len(want)-1)...)
	sourcetest.SameInputs(t, want, got)
	assert.Zero(t, h.src.Stats().Reconnects)
	assert.Equal(t, 1, srv.Connections())
}

func TestNewChecksConfig(t *testing.T) {
	s, err := New(Config{User: "u", Password: "p"})
	require.NoError(t, err)
	assert.Equal(t, "ws://127.0.0.1:8088/ari/events?app=kanca&subscribeAll=true", s.eventsURL)
	assert.Equal(t, "http://127.0.0.1:8088/ari", s.restURL)

	s, err = New(Config{URL: "https://pbx.example:8089/asterisk/", User: "u", App: "a b"})
	require.NoError(t, err)
	assert.Equal(t, "wss://pbx.example:8089/asterisk/ari/events?app=a+b&subscribeAll=true", s.eventsURL)
	assert.Equal(t, "https://pbx.example:8089/asterisk/ari", s.restURL)

	// Asterisk's own docs write ARI's URL with its /ari: the same server.
	s, err = New(Config{URL: "https://pbx.example:8089/asterisk/ari/", User: "u"})
	require.NoError(t, err)
	assert.Equal(t, "https://pbx.example:8089/asterisk/ari", s.restURL)

	_, err = New(Config{URL: "127.0.0.1:8088", User: "u"})
	require.EqualError(t, err, `ari: URL "127.0.0.1:8088" has no scheme: write it as http://127.0.0.1:8088`)

	for _, bad := range []Config{
		{URL: "http://u:hunter2@pbx:8088", User: "u"},
		{URL: "u:hunter2@127.0.0.1:8088", User: "u"},
		{URL: "ftp://pbx", User: "u"},
		{URL: "http://pbx:8088/?x=1", User: "u"},
		{URL: "pbx:8088", User: "u"},
		{URL: "http://pbx:8088"},
		{URL: "http://pbx:8088\x7f", User: "u", Password: "hunter2"},
	} {
		_, err := New(bad)
		require.Error(t, err, "%+v", bad)
		assert.NotContains(t, err.Error(), "hunter2")
	}
}
