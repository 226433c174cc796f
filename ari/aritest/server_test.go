package aritest

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const s01 = "../../testdata/ari/s01-answered-caller-hangs-up/events.ndjson"

func get(t *testing.T, url, user, pass string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func dial(t *testing.T, ctx context.Context, url string) *websocket.Conn {
	t.Helper()
	h := http.Header{}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.SetBasicAuth("kanca", "kanca")
	h.Set("Authorization", req.Header.Get("Authorization"))
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	require.NoError(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func TestServerChecksAuthAndSubscription(t *testing.T) {
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	for _, path := range []string{"/ari/events?app=kanca&subscribeAll=true", "/ari/channels", "/ari/asterisk/info"} {
		resp := get(t, srv.URL+path, "kanca", "wrong")
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
		assert.NotEmpty(t, resp.Header.Get("WWW-Authenticate"))
		assert.Equal(t, http.StatusUnauthorized, get(t, srv.URL+path, "", "").StatusCode, path)
	}
	assert.Equal(t, http.StatusBadRequest, get(t, srv.URL+"/ari/events?app=other&subscribeAll=true", "kanca", "kanca").StatusCode)
	assert.Equal(t, http.StatusBadRequest, get(t, srv.URL+"/ari/events?app=kanca", "kanca", "kanca").StatusCode)
	assert.Equal(t, 4, srv.Attempts())
	assert.Zero(t, srv.Connections())
}

// liveAfter computes independently of the server which channels a prefix of
// a recording leaves alive.
func liveAfter(t *testing.T, frames [][]byte) []string {
	var live []string
	for _, f := range frames {
		var e struct {
			Type    string
			Channel struct{ ID string }
		}
		require.NoError(t, json.Unmarshal(f, &e))
		switch e.Type {
		case "ChannelCreated":
			live = append(live, e.Channel.ID)
		case "ChannelDestroyed":
			i := -1
			for j, id := range live {
				if id == e.Channel.ID {
					i = j
				}
			}
			require.NotEqual(t, -1, i)
			live = append(live[:i], live[i+1:]...)
		}
	}
	return live
}

func TestServerDropsAndLivesThroughTheGap(t *testing.T) {
	frames, err := LoadNDJSON(s01)
	require.NoError(t, err)
	const n, gap = 20, 30
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	srv.DropAfter(n, gap)
	srv.Play(frames...)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dial(t, ctx, "ws"+srv.URL[len("http"):]+"/ari/events?app=kanca&subscribeAll=true")
	for i := range n {
		_, data, err := c.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, frames[i], data, "frame %d as recorded", i)
	}
	_, _, err = c.Read(ctx)
	require.Error(t, err, "cut off after %d frames", n)
	assert.Equal(t, n+gap, srv.Pos())

	want := liveAfter(t, frames[:n+gap])
	require.NotEmpty(t, want)
	assert.Equal(t, want, srv.LiveChannels())
	resp := get(t, srv.URL+"/ari/channels", "kanca", "kanca")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var listed []struct{ ID string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&listed))
	var ids []string
	for _, l := range listed {
		ids = append(ids, l.ID)
	}
	assert.Equal(t, want, ids)
	var last struct{ Timestamp string }
	require.NoError(t, json.Unmarshal(frames[n+gap-1], &last))
	stamp, err := time.Parse("2006-01-02T15:04:05.000-0700", last.Timestamp)
	require.NoError(t, err)
	date, err := http.ParseTime(resp.Header.Get("Date"))
	require.NoError(t, err)
	assert.True(t, stamp.Truncate(time.Second).Equal(date), "Date follows the script's clock")

	// The next client resumes after the gap and sees the call end.
	c2 := dial(t, ctx, "ws"+srv.URL[len("http"):]+"/ari/events?app=kanca&subscribeAll=true")
	for i := n + gap; i < len(frames); i++ {
		_, data, err := c2.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, frames[i], data)
	}
	assert.Empty(t, srv.LiveChannels())
	assert.Equal(t, 2, srv.Connections())
}

func TestServerInfo(t *testing.T) {
	frames, err := LoadNDJSON(s01)
	require.NoError(t, err)
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	srv.DropAfter(0, 1) // live through the first frame unseen
	srv.Play(frames...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dial(t, ctx, "ws"+srv.URL[len("http"):]+"/ari/events?app=kanca&subscribeAll=true")
	_, _, err = c.Read(ctx)
	require.Error(t, err)

	resp := get(t, srv.URL+"/ari/asterisk/info", "kanca", "kanca")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var info struct {
		System struct {
			Version  string `json:"version"`
			EntityID string `json:"entity_id"`
		} `json:"system"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&info))
	var first struct {
		AsteriskID string `json:"asterisk_id"`
	}
	require.NoError(t, json.Unmarshal(frames[0], &first))
	assert.Equal(t, first.AsteriskID, info.System.EntityID)
	assert.NotEmpty(t, info.System.Version)
}

func TestReadNDJSONPlainAndGzip(t *testing.T) {
	plain := []byte("{\"a\":1}\n\n  {\"b\":2}  \r\n{\"c\":3}")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, err := zw.Write(plain)
	require.NoError(t, err)
	require.NoError(t, zw.Close())

	dir := t.TempDir()
	for name, data := range map[string][]byte{"events.ndjson": plain, "events.ndjson.gz": gz.Bytes(), "misnamed.txt": gz.Bytes()} {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, data, 0o600))
		frames, err := LoadNDJSON(path)
		require.NoError(t, err, name)
		assert.Equal(t, [][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`), []byte(`{"c":3}`)}, frames, name)
	}
	_, err = LoadNDJSON(filepath.Join(dir, "absent"))
	assert.Error(t, err)
}

func TestServerOnSendAndForgetSent(t *testing.T) {
	frames, err := LoadNDJSON(s01)
	require.NoError(t, err)
	sent := make(chan int, len(frames))
	srv := NewServer(Options{OnSend: func(i int) { sent <- i }, ForgetSent: true})
	t.Cleanup(srv.Close)
	srv.Play(frames...)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dial(t, ctx, "ws"+srv.URL[len("http"):]+"/ari/events?app=kanca&subscribeAll=true")
	for i := range frames {
		_, data, err := c.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, frames[i], data, "frame %d as recorded", i)
		assert.Equal(t, i, <-sent, "OnSend before frame %d", i)
	}
	assert.NotEmpty(t, frames[0], "the caller's frames are left alone")
	assert.Empty(t, srv.LiveChannels())
}

// A hung Asterisk sends no frame and answers no REST call until it
// resumes.
func TestServerHangs(t *testing.T) {
	frames, err := LoadNDJSON(s01)
	require.NoError(t, err)
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	srv.Hang(0)
	srv.Play(frames[:1]...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := dial(t, ctx, "ws"+srv.URL[len("http"):]+"/ari/events?app=kanca&subscribeAll=true")

	short, stop := context.WithTimeout(ctx, 50*time.Millisecond)
	defer stop()
	_, data, err := c.Read(short)
	assert.Error(t, err, "no frame while hung")
	assert.Nil(t, data)
	req, err := http.NewRequestWithContext(short, http.MethodGet, srv.URL+"/ari/channels", nil)
	require.NoError(t, err)
	req.SetBasicAuth("kanca", "kanca")
	_, err = http.DefaultClient.Do(req)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "no answer while hung")
	assert.Zero(t, srv.Pos(), "nothing sent while hung")

	srv.Resume()
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/ari/channels", "kanca", "kanca").StatusCode)
}

// A dialled channel belongs to its caller's call from its creation:
// Asterisk allocates it with its requestor's linkedid, so
// CHANNEL(linkedid) names the caller's call even before the Dial event
// that names the two.
func TestServerLinkedIDOfADialledChannelBeforeItsDial(t *testing.T) {
	frames, err := LoadNDJSON(s01)
	require.NoError(t, err)
	created := -1 // the callee's ChannelCreated: the second channel
	seen := 0
	for i, fr := range frames {
		if bytes.Contains(fr, []byte(`"type":"ChannelCreated"`)) {
			if seen++; seen == 2 {
				created = i
				break
			}
		}
	}
	require.Positive(t, created)
	var f struct {
		Channel struct{ ID string } `json:"channel"`
	}
	require.NoError(t, json.Unmarshal(frames[created], &f))
	require.False(t, bytes.Contains(bytes.Join(frames[:created+1], nil), []byte(`"type":"Dial"`)), "no Dial yet")

	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	srv.Play(frames...)
	srv.LiveThrough(created + 1)
	resp := get(t, srv.URL+"/ari/channels/"+f.Channel.ID+"/variable?variable=CHANNEL(linkedid)", "kanca", "kanca")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var v struct{ Value string }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	assert.Equal(t, "1795349289.0", v.Value, "the caller's call")
}

// GET /ari/bridges follows the script's bridge frames: at each frame the
// fake lists the bridges created and not yet destroyed, each with the
// channels the latest frame about it names. A channel entering a bridge
// takes the oldest linkedid in it, as the recording's CEL shows for the
// retriever of a parked call (LINKEDID_END, then the caller's linkedid).
func TestServerBridgesFollowTheScript(t *testing.T) {
	frames, err := LoadNDJSON("../../testdata/ari/t04_park_and_retrieve/events.ndjson")
	require.NoError(t, err)
	type bridge struct {
		ID       string   `json:"id"`
		Class    string   `json:"bridge_class"`
		Channels []string `json:"channels"`
	}
	srv := NewServer(Options{})
	t.Cleanup(srv.Close)
	srv.Play(frames...)
	want := map[string][]string{} // what the frames say, read apart from the fake
	retriever, caller := "", ""
	for i, fr := range frames {
		srv.LiveThrough(1)
		var f struct {
			Type    string `json:"type"`
			Bridge  *bridge
			Channel struct {
				ID, Name string
			}
		}
		require.NoError(t, json.Unmarshal(fr, &f))
		switch {
		case f.Type == "BridgeDestroyed":
			delete(want, f.Bridge.ID)
		case f.Bridge != nil && f.Type != "BridgeBlindTransfer":
			want[f.Bridge.ID] = f.Bridge.Channels
		}
		if f.Type == "ChannelEnteredBridge" && len(f.Bridge.Channels) == 2 && f.Bridge.Class == "basic" {
			caller, retriever = f.Bridge.Channels[0], f.Channel.ID
		}
		resp := get(t, srv.URL+"/ari/bridges", "kanca", "kanca")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var got []bridge
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
		have := map[string][]string{}
		for _, b := range got {
			have[b.ID] = b.Channels
			if b.Channels == nil {
				have[b.ID] = []string{}
			}
		}
		for id, chans := range want {
			if chans == nil {
				want[id] = []string{}
			}
		}
		require.Equal(t, want, have, "after frame %d (%s)", i, f.Type)
	}
	require.NotEmpty(t, retriever)
	assert.Len(t, want, 1, "the parking lot's bridge stays, as Asterisk keeps it")

	// The retriever, while bridged, belongs to the call it took.
	srv2 := NewServer(Options{})
	t.Cleanup(srv2.Close)
	srv2.Play(frames...)
	at := -1
	for i, fr := range frames {
		if bytes.Contains(fr, []byte(`"type":"ChannelEnteredBridge"`)) && bytes.Contains(fr, []byte(`"id":"`+retriever+`"`)) {
			at = i
		}
	}
	srv2.LiveThrough(at)
	linked := func() string {
		resp := get(t, srv2.URL+"/ari/channels/"+retriever+"/variable?variable=CHANNEL(linkedid)", "kanca", "kanca")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var v struct{ Value string }
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		return v.Value
	}
	assert.Equal(t, retriever, linked(), "its own call before it is bridged")
	srv2.LiveThrough(1)
	assert.Equal(t, caller, linked(), "the caller's once bridged")
}
