package ari

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow/sourcetest"
)

const traceDir = "../testdata/ari"

// scenario loads the raw frames of one recorded scenario, by folder prefix.
func scenario(t testing.TB, prefix string) [][]byte { return sourcetest.Recording(t, traceDir, prefix) }

func allScenarios(t testing.TB) map[string][][]byte { return sourcetest.Recordings(t, traceDir) }

// decodeAll decodes frames and keeps the inputs, failing on any error.
func decodeAll(t testing.TB, frames [][]byte) []cdr.Input {
	t.Helper()
	var out []cdr.Input
	for i, f := range frames {
		in, ok, err := Decode(f)
		require.NoError(t, err, "frame %d: %s", i, f)
		if ok {
			out = append(out, in)
		}
	}
	return out
}

// TestDecodeEveryRecordedFrame checks every frame of every scenario against
// a second, generic reading of the same JSON, so the field mapping is
// verified on everything Asterisk actually sent, not on a few picked frames.
func TestDecodeEveryRecordedFrame(t *testing.T) {
	mappedSeen := map[cdr.Kind]int{}
	for name, frames := range allScenarios(t) {
		for i, raw := range frames {
			in, ok, err := Decode(raw)
			require.NoError(t, err, "%s frame %d", name, i)

			var m map[string]any
			require.NoError(t, json.Unmarshal(raw, &m))
			typ := m["type"].(string)
			kind, isMapped := kindOf[typ]
			if typ == "ChannelVarset" && m["channel"] == nil {
				isMapped = false
			}
			if kind == cdr.KindTransfer && (m["result"] != "Success" || m["transferee"] == nil) {
				isMapped = false
			}
			if b, _ := m["bridge"].(map[string]any); typ == "ChannelEnteredBridge" && b["bridge_class"] == "parking" {
				kind = cdr.KindPark
			}
			require.Equal(t, isMapped, ok, "%s frame %d (%s)", name, i, typ)
			if !ok {
				continue
			}
			mappedSeen[kind]++
			assert.Equal(t, kind, in.Kind)
			assert.Equal(t, m["asterisk_id"], in.Server)
			ts, err := time.Parse(ari5Layout, m["timestamp"].(string))
			require.NoError(t, err)
			assert.True(t, ts.Equal(in.Time), "%s frame %d time", name, i)

			snapKey := "channel"
			switch kind {
			case cdr.KindDial:
				snapKey = "peer"
			case cdr.KindTransfer:
				snapKey = "transferee"
			}
			snap := m[snapKey].(map[string]any)
			checkSnapshot(t, snap, in.Channel)

			switch kind {
			case cdr.KindDialplan:
				assert.Equal(t, m["dialplan_app"], in.Channel.App)
				assert.Equal(t, m["dialplan_app_data"], in.Channel.AppData)
			case cdr.KindVar:
				assert.Equal(t, m["variable"], in.Var)
				assert.Equal(t, m["value"], in.Value)
			case cdr.KindDial:
				assert.Equal(t, m["dialstatus"], in.DialStatus)
				assert.Equal(t, m["dialstring"], in.DialString)
				assert.Equal(t, m["forward"], in.Forward)
				if c, has := m["caller"].(map[string]any); has {
					require.NotNil(t, in.Other)
					checkSnapshot(t, c, *in.Other)
				} else {
					assert.Nil(t, in.Other)
				}
			case cdr.KindDTMF:
				assert.Equal(t, m["digit"], in.Digit)
			case cdr.KindBridgeEnter, cdr.KindBridgeLeave:
				assert.Equal(t, m["bridge"].(map[string]any)["id"], in.Bridge)
			case cdr.KindPark:
				assert.Equal(t, m["bridge"].(map[string]any)["name"], in.Target)
			case cdr.KindTransfer:
				if typ == typeBlindTransfer {
					assert.Equal(t, "blind", in.Detail)
					assert.Equal(t, m["exten"], in.Target)
				} else {
					assert.Equal(t, "attended", in.Detail)
				}
			case cdr.KindHangupRequest, cdr.KindDestroyed:
				soft, _ := m["soft"].(bool)
				assert.Equal(t, soft, in.Soft)
				if soft {
					// A soft request's cause is a soft-hangup flag.
					assert.Zero(t, in.Cause)
					assert.Zero(t, in.TechCause)
					break
				}
				assert.Equal(t, num(m["cause"]), in.Cause)
				assert.Equal(t, num(m["tech_cause"]), in.TechCause)
				txt, _ := m["cause_txt"].(string)
				assert.Equal(t, txt, in.CauseText)
			}
		}
	}
	for _, k := range []cdr.Kind{cdr.KindCreated, cdr.KindState, cdr.KindDialplan, cdr.KindVar, cdr.KindCallerID,
		cdr.KindDial, cdr.KindDTMF, cdr.KindBridgeEnter, cdr.KindBridgeLeave, cdr.KindHangupRequest, cdr.KindDestroyed,
		cdr.KindTransfer, cdr.KindPark} {
		assert.Positive(t, mappedSeen[k], "no recorded frame of kind %s", k)
	}
}

const ari5Layout = "2006-01-02T15:04:05.000-0700"

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

func checkSnapshot(t *testing.T, snap map[string]any, got cdr.Channel) {
	t.Helper()
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	sub := func(k string) map[string]any { s, _ := snap[k].(map[string]any); return s }
	assert.Equal(t, str(snap, "id"), got.ID)
	assert.Equal(t, str(snap, "name"), got.Name)
	assert.Equal(t, str(snap, "state"), got.State)
	assert.Equal(t, str(sub("caller"), "number"), got.CallerNumber)
	assert.Equal(t, str(sub("caller"), "name"), got.CallerName)
	assert.Equal(t, str(sub("connected"), "number"), got.ConnectedNumber)
	assert.Equal(t, str(sub("dialplan"), "context"), got.Context)
	assert.Equal(t, str(sub("dialplan"), "exten"), got.Exten)
	assert.Equal(t, str(snap, "caller_rdnis"), got.RDNIS)
	created, err := time.Parse(ari5Layout, str(snap, "creationtime"))
	require.NoError(t, err)
	assert.True(t, created.Equal(got.Created))
	vars := sub("channelvars")
	assert.Len(t, got.Vars, len(vars))
	for k, v := range vars {
		assert.Equal(t, v, got.Vars[k])
	}
	assert.Equal(t, str(vars, linkedIDVar), got.LinkedID)
}

func TestDecodeRingGroupDial(t *testing.T) {
	// s12: Dial(PJSIP/1001&PJSIP/1002) from the trunk; 1002 answers, 1001
	// is cancelled.
	var statuses = map[string][]string{}
	for _, in := range decodeAll(t, scenario(t, "s12")) {
		if in.Kind != cdr.KindDial {
			continue
		}
		require.NotNil(t, in.Other, "a dialplan Dial always has a caller")
		assert.True(t, strings.HasPrefix(in.Other.Name, "PJSIP/trunk-"), in.Other.Name)
		peer := strings.TrimPrefix(strings.SplitN(in.Channel.Name, "-", 2)[0], "PJSIP/")
		statuses[peer] = append(statuses[peer], in.DialStatus)
		if in.DialStatus == "" {
			assert.Equal(t, peer, in.DialString)
		}
	}
	assert.Equal(t, []string{"", "RINGING", "CANCEL"}, statuses["1001"])
	assert.Equal(t, []string{"", "RINGING", "ANSWER"}, statuses["1002"])
}

func TestDecodeAbandonHangupRequests(t *testing.T) {
	// s04: the caller CANCELs while 1000 rings: a hard request with the
	// SIP 487 behind it, then the soft teardown.
	var reqs []cdr.Input
	for _, in := range decodeAll(t, scenario(t, "s04")) {
		if in.Kind == cdr.KindHangupRequest {
			reqs = append(reqs, in)
		}
	}
	require.NotEmpty(t, reqs)
	first := reqs[0]
	assert.False(t, first.Soft)
	assert.Equal(t, 127, first.Cause)
	assert.Equal(t, 487, first.TechCause)
	assert.True(t, strings.HasPrefix(first.Channel.Name, "PJSIP/trunk-"), "the caller hung up")
	for _, r := range reqs[1:] {
		assert.True(t, r.Soft, "only the caller's request is hard")
	}
}

func TestDecodeChannelVarsLinkedID(t *testing.T) {
	// s14: ari.conf has channelvars = CHANNEL(linkedid),DID, and the
	// inbound leg's id is the linkedid of every leg of the call.
	ins := decodeAll(t, scenario(t, "s14"))
	require.Equal(t, cdr.KindCreated, ins[0].Kind)
	inbound := ins[0].Channel.ID
	for _, in := range ins {
		assert.Equal(t, inbound, in.Channel.LinkedID, "%s on %s", in.Kind, in.Channel.Name)
		assert.Contains(t, in.Channel.Vars, "DID")
	}
	last := ins[len(ins)-1]
	assert.Equal(t, "908508850000", last.Channel.Vars["DID"], "DID is inherited by the time the call ends")
}

func TestDecodeIVRDigit(t *testing.T) {
	var digits []string
	for _, in := range decodeAll(t, scenario(t, "s06")) {
		if in.Kind == cdr.KindDTMF {
			digits = append(digits, in.Digit)
			assert.Equal(t, "ivr-main", in.Channel.Context)
		}
	}
	assert.Equal(t, []string{"1"}, digits)
}

func TestDecodeDialplanAndDestroyed(t *testing.T) {
	ins := decodeAll(t, scenario(t, "s01"))
	var apps []string
	var destroyed []cdr.Input
	for _, in := range ins {
		switch in.Kind {
		case cdr.KindDialplan:
			apps = append(apps, in.Channel.App+"("+in.Channel.AppData+")")
		case cdr.KindDestroyed:
			destroyed = append(destroyed, in)
		}
	}
	assert.Contains(t, apps, "Dial(PJSIP/1000,20)")
	require.Len(t, destroyed, 2)
	for _, d := range destroyed {
		assert.Equal(t, 16, d.Cause)
		assert.Equal(t, "Normal Clearing", d.CauseText)
	}
}

func TestDecodeSynthetic(t *testing.T) {
	const snap = `{"id":"1.1","name":"PJSIP/a-1","state":"Ring","caller":{"name":"A","number":"100"},` +
		`"connected":{"name":"","number":""},"dialplan":{"context":"c","exten":"e","priority":1,"app_name":"","app_data":""},` +
		`"creationtime":"2026-11-22T12:08:09.920+0000","caller_rdnis":"555"}`
	ts := `"timestamp":"2026-11-22T12:08:10.000+0000","asterisk_id":"id1"`
	t.Run("fax tone", func(t *testing.T) {
		in, ok, err := Decode([]byte(`{"type":"ChannelToneDetected",` + ts + `,"channel":` + snap + `}`))
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, cdr.KindFax, in.Kind)
		assert.Equal(t, "tone", in.Detail)
		assert.Equal(t, "555", in.Channel.RDNIS)
	})
	t.Run("rfc3339 timestamps", func(t *testing.T) {
		for _, stamp := range []string{"2026-11-22T12:08:10Z", "2026-11-22T12:08:10.5+03:00", "2026-11-22T12:08:10.123456+0000"} {
			in, ok, err := Decode([]byte(`{"type":"ChannelStateChange","timestamp":"` + stamp + `","channel":` + snap + `}`))
			require.NoError(t, err, stamp)
			require.True(t, ok)
			assert.Equal(t, 2026, in.Time.Year(), stamp)
		}
	})
	t.Run("dial without caller is an originate", func(t *testing.T) {
		in, ok, err := Decode([]byte(`{"type":"Dial",` + ts + `,"dialstatus":"ANSWER","peer":` + snap + `}`))
		require.NoError(t, err)
		require.True(t, ok)
		assert.Nil(t, in.Other)
		assert.Equal(t, "ANSWER", in.DialStatus)
	})
	t.Run("hangup request without cause", func(t *testing.T) {
		in, ok, err := Decode([]byte(`{"type":"ChannelHangupRequest",` + ts + `,"channel":` + snap + `}`))
		require.NoError(t, err)
		require.True(t, ok)
		assert.Zero(t, in.Cause)
		assert.False(t, in.Soft)
	})

	ignored := map[string]string{
		"global var":              `{"type":"ChannelVarset",` + ts + `,"variable":"G","value":"1"}`,
		"connected line":          `{"type":"ChannelConnectedLine",` + ts + `,"channel":` + snap + `}`,
		"device state":            `{"type":"DeviceStateChanged",` + ts + `,"device_state":{"name":"PJSIP/1000","state":"INUSE"}}`,
		"unknown type":            `{"type":"SomethingNew",` + ts + `}`,
		"unknown with odd fields": `{"type":"SomethingNew","cause":"not a number","channel":7}`,
		"stasis start":            `{"type":"StasisStart",` + ts + `,"args":[],"channel":` + snap + `}`,
	}
	for name, raw := range ignored {
		t.Run(name, func(t *testing.T) {
			_, ok, err := Decode([]byte(raw))
			require.NoError(t, err)
			assert.False(t, ok)
		})
	}

	malformed := map[string]string{
		"not json":           `{"type":"ChannelCreated"`,
		"empty":              ``,
		"array":              `[1,2]`,
		"no type":            `{"timestamp":"2026-11-22T12:08:10.000+0000"}`,
		"no channel":         `{"type":"ChannelCreated",` + ts + `}`,
		"channel without id": `{"type":"ChannelCreated",` + ts + `,"channel":{"name":"x"}}`,
		"dial without peer":  `{"type":"Dial",` + ts + `,"caller":` + snap + `}`,
		"bridge without id":  `{"type":"ChannelEnteredBridge",` + ts + `,"bridge":{},"channel":` + snap + `}`,
		"bad timestamp":      `{"type":"ChannelCreated","timestamp":"yesterday","channel":` + snap + `}`,
		"no timestamp":       `{"type":"ChannelCreated","channel":` + snap + `}`,
		"bad creationtime":   `{"type":"ChannelCreated",` + ts + `,"channel":{"id":"1","creationtime":"soon"}}`,
		"mapped, odd shape":  `{"type":"ChannelDestroyed",` + ts + `,"cause":"sixteen","channel":` + snap + `}`,
	}
	for name, raw := range malformed {
		t.Run(name, func(t *testing.T) {
			_, ok, err := Decode([]byte(raw))
			require.ErrorIs(t, err, ErrMalformed)
			assert.False(t, ok)
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, frames := range allScenarios(f) {
		for _, fr := range frames {
			f.Add(fr)
		}
	}
	f.Add([]byte(`{"type":"Dial","peer":{"id":"x","creationtime":"2026-11-22T12:08:09Z"},"timestamp":"2026-11-22T12:08:09Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, ok, err := Decode(data)
		if err != nil && ok {
			t.Fatalf("ok with an error: %v", err)
		}
		if ok && (in.Kind == 0 || in.Channel.ID == "") {
			t.Fatalf("ok without a kind or channel: %+v", in)
		}
	})
}

// BenchmarkDecode decodes the frames of the 600-call load recording (about
// 40k frames) one per op, so ns/op and allocs/op are per frame.
func BenchmarkDecode(b *testing.B) {
	path := filepath.Join("..", "testdata", "ari-load", "run1_10cps", "events.ndjson.gz")
	frames, err := aritest.LoadNDJSON(path)
	require.NoError(b, err)
	var size int64
	for _, f := range frames {
		size += int64(len(f))
	}
	b.SetBytes(size / int64(len(frames)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, _, err := Decode(frames[n%len(frames)]); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "frames/s")
}

// A soft hangup request carries Asterisk's soft-hangup flag in cause
// (AST_SOFTHANGUP_SHUTDOWN = 4 when Asterisk restarts), not a Q.850
// cause: it must never reach a CDR as CAUSE_4.
func TestDecodeSoftHangupHasNoCause(t *testing.T) {
	frame := `{"type":"ChannelHangupRequest","timestamp":"2026-12-05T08:59:35.911+0000","asterisk_id":"02:fc:00:00:00:01",` +
		`"cause":4,"soft":true,"channel":{"id":"1.1","name":"PJSIP/trunk-1","state":"Up","creationtime":"2026-12-05T08:59:17.894+0000"}}`
	in, ok, err := Decode([]byte(frame))
	require.NoError(t, err)
	require.True(t, ok)
	assert.True(t, in.Soft)
	assert.Zero(t, in.Cause)

	hard := strings.Replace(strings.Replace(frame, `"soft":true`, `"soft":false`, 1), `"cause":4`, `"cause":16`, 1)
	in, _, err = Decode([]byte(hard))
	require.NoError(t, err)
	assert.Equal(t, 16, in.Cause, "a hard request keeps its Q.850 cause")
}

// inputsOf decodes one scenario and keeps the inputs of one kind.
func inputsOf(t *testing.T, prefix string, kind cdr.Kind) []cdr.Input {
	t.Helper()
	var out []cdr.Input
	for _, in := range decodeAll(t, scenario(t, prefix)) {
		if in.Kind == kind {
			out = append(out, in)
		}
	}
	return out
}

// t01: *2 then 1001; when 1000 hangs up Asterisk joins the caller to the
// Local channel that reached 1001. The transfer names the transferee and
// the target, found in the destination bridge.
func TestDecodeAttendedTransfer(t *testing.T) {
	got := inputsOf(t, "t01", cdr.KindTransfer)
	require.Len(t, got, 1)
	in := got[0]
	assert.Equal(t, "attended", in.Detail)
	assert.Equal(t, "PJSIP/trunk-0000002c", in.Channel.Name, "the caller is the transferee")
	assert.Equal(t, "1001", in.Target)
	require.NotNil(t, in.Other)
	assert.Equal(t, "1796461165.50", in.Other.ID, "Local/1001@from-internal-00000002;1 shares the caller's bridge")
}

// t02 (##1001) and t08 (SIP REFER to an outside number): blind transfers
// name the extension the transferee runs.
func TestDecodeBlindTransfer(t *testing.T) {
	for prefix, want := range map[string]string{"t02": "1001", "t08": "05321234567"} {
		got := inputsOf(t, prefix, cdr.KindTransfer)
		require.Len(t, got, 1, prefix)
		assert.Equal(t, "blind", got[0].Detail)
		assert.Equal(t, want, got[0].Target)
		assert.True(t, strings.HasPrefix(got[0].Channel.Name, "PJSIP/trunk-"), "the caller is the transferee")
		assert.Nil(t, got[0].Other)
	}
}

// t04: #72 moves the caller into the parking lot's holding bridge.
func TestDecodeParkingBridge(t *testing.T) {
	parks := inputsOf(t, "t04", cdr.KindPark)
	require.Len(t, parks, 1)
	assert.Equal(t, "default", parks[0].Target, "ARI names the lot")
	assert.True(t, strings.HasPrefix(parks[0].Channel.Name, "PJSIP/trunk-"))
}

// PlaybackFinished, as Asterisk sent it for a sound kanca played on a call
// it placed (testdata/ari-originate/o01), names the channel it played on;
// one that played on a bridge is no channel's.
func TestDecodePlaybackFinished(t *testing.T) {
	frame := `{"type":"PlaybackFinished","timestamp":"2026-12-05T09:12:29.650+0000","playback":{"id":"e9adcc76-ac54-4eb7-9666-a372ea62867b","media_uri":"sound:http://127.0.0.1:8099/msg.wav","target_uri":"channel:1796461943.0","language":"en","state":"done"},"asterisk_id":"02:fc:00:00:00:01","application":"autodial"}`
	in, ok, err := Decode([]byte(frame))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, cdr.KindPlayed, in.Kind)
	assert.Equal(t, "1796461943.0", in.Channel.ID)

	bridged := strings.Replace(frame, "channel:1796461943.0", "bridge:b1", 1)
	_, ok, err = Decode([]byte(bridged))
	require.NoError(t, err)
	assert.False(t, ok)
}
