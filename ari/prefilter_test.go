package ari

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cdr"
)

var tracked = cdr.DefaultConfig().ReadsVariable

// head is what Unread reads, decoded the slow way.
func head(t testing.TB, frame []byte) (typ, variable string) {
	var h struct {
		Type     string `json:"type"`
		Variable string `json:"variable"`
	}
	require.NoError(t, json.Unmarshal(frame, &h))
	return h.Type, h.Variable
}

// On every recorded frame, Unread says what a full decode of the type and
// variable says, and drops most ChannelVarset frames.
func TestUnreadEveryRecordedFrame(t *testing.T) {
	frames := [][]byte{}
	for _, fs := range allScenarios(t) {
		frames = append(frames, fs...)
	}
	load, err := aritest.LoadNDJSON(filepath.Join("..", "testdata", "ari-load", "run1_10cps", "events.ndjson.gz"))
	require.NoError(t, err)
	frames = append(frames, load...)
	varsets, dropped := 0, 0
	for _, fr := range frames {
		typ, variable := head(t, fr)
		want := typ == "ChannelVarset" && !tracked(variable)
		gotTyp, unread := Unread(fr, tracked)
		require.Equal(t, want, unread, "%s", fr)
		if typ == "ChannelVarset" {
			varsets++
			assert.Equal(t, typ, gotTyp)
		}
		if unread {
			dropped++
		}
	}
	t.Logf("%d frames, %d ChannelVarset, %d dropped unread", len(frames), varsets, dropped)
	assert.Greater(t, dropped, varsets*3/4, "most ChannelVarset frames are of variables nobody reads")
}

func TestUnread(t *testing.T) {
	for _, c := range []struct {
		name, frame string
		unread      bool
	}{
		{"unread", `{"type":"ChannelVarset","variable":"RTPAUDIOQOS","value":"x","channel":{"id":"1","channelvars":{"variable":"DIALSTATUS"}}}`, true},
		{"variable first", ` {"variable":"BRIDGEPEER","channel":{"id":"1"},"type":"ChannelVarset"} `, true},
		{"read", `{"type":"ChannelVarset","variable":"DIALSTATUS","value":"ANSWER","channel":{"id":"1"}}`, false},
		{"inherited read", `{"type":"ChannelVarset","variable":"__MIXMONITOR_FILENAME","channel":{"id":"1"}}`, false},
		{"escaped name", `{"type":"ChannelVarset","variable":"DIAL\u0053TATUS","channel":{"id":"1"}}`, false},
		{"escaped unread", `{"type":"ChannelVarset","variable":"A\"B","channel":{"id":"1","name":"a\\\"}"}}`, true},
		{"other type", `{"type":"ChannelDialplan","variable":"X","channel":{"id":"1"}}`, false},
		{"no variable", `{"type":"ChannelVarset","channel":{"id":"1"}}`, false},
		{"type twice", `{"type":"ChannelVarset","variable":"X","type":"Dial"}`, false},
		{"variable twice", `{"type":"ChannelVarset","variable":"X","variable":"DIALSTATUS"}`, false},
		{"brackets crossed", `{"type":"ChannelVarset","variable":"X","channel":{"a":[}]}`, false},
		{"cut short", `{"type":"ChannelVarset","variable":"X","channel":{"id":"1"`, false},
		{"trailing bytes", `{"type":"ChannelVarset","variable":"X"} x`, false},
		{"not an object", `["ChannelVarset"]`, false},
		{"numbers and literals", `{"type":"ChannelVarset","variable":"X","n":-1.5e3,"b":true,"z":null,"a":[1,{"b":[]}]}`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, unread := Unread([]byte(c.frame), tracked)
			assert.Equal(t, c.unread, unread)
		})
	}
}

// Unread never drops a frame that decodes to a variable the tracker
// reads, nor anything but a ChannelVarset.
func FuzzUnread(f *testing.F) {
	for _, frames := range allScenarios(f) {
		for _, fr := range frames {
			f.Add(fr)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		typ, unread := Unread(data, tracked)
		if !unread {
			return
		}
		if typ != "ChannelVarset" {
			t.Fatalf("dropped a %q frame", typ)
		}
		if in, ok, err := Decode(data); err == nil && ok && (in.Kind != cdr.KindVar || tracked(in.Var)) {
			t.Fatalf("dropped what the tracker reads: %+v", in)
		}
	})
}

// BenchmarkUnread is BenchmarkDecode's frames through the prefilter, then
// Decode for what it keeps: the live path's cost per frame.
func BenchmarkUnread(b *testing.B) {
	frames, err := aritest.LoadNDJSON(filepath.Join("..", "testdata", "ari-load", "run1_10cps", "events.ndjson.gz"))
	require.NoError(b, err)
	dec := DecodeReading(tracked)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, _, err := dec(frames[n%len(frames)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
}
