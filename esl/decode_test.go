package esl

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

func TestDecodeErrorsAndSkips(t *testing.T) {
	for _, bad := range []string{`not json`, `{}`, `{"Event-Name":"CHANNEL_CREATE","Event-Date-Timestamp":"1"}`,
		`{"Event-Name":"CHANNEL_ANSWER","Unique-ID":"a"}`} {
		_, ok, err := Decode([]byte(bad))
		assert.False(t, ok, bad)
		assert.True(t, errors.Is(err, ErrMalformed), bad)
	}
	for _, skip := range []string{`{"Event-Name":"HEARTBEAT"}`, `{"Event-Name":"CUSTOM","Event-Subclass":"callcenter::info","CC-Action":"members-count"}`} {
		_, ok, err := Decode([]byte(skip))
		assert.False(t, ok, skip)
		assert.NoError(t, err, skip)
	}
}

func TestDecodeBLegHangupIsDialStatus(t *testing.T) {
	in, ok, err := Decode([]byte(`{"Event-Name":"CHANNEL_HANGUP","Event-Date-Timestamp":"1795351595016000",
		"FreeSWITCH-Switchname":"fs","Unique-ID":"b","Other-Type":"originator","Other-Leg-Unique-ID":"a",
		"Hangup-Cause":"NO_ANSWER","Caller-Channel-Answered-Time":"0"}`))
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, cdr.KindDial, in.Kind)
	assert.Equal(t, "NOANSWER", in.DialStatus)
	assert.Equal(t, "a", in.Other.ID)
	assert.Equal(t, "a", in.Channel.LinkedID)
	assert.Equal(t, "fs", in.Server)
	assert.Equal(t, time.UnixMicro(1795351595016000), in.Time)
}

func TestOrder(t *testing.T) {
	o := NewOrder[int](2)
	var got []int
	for _, s := range []uint64{3, 1, 2, 5, 4, 6} {
		got = append(got, o.Push("core", s, time.Time{}, int(s))...)
	}
	got = append(got, o.Flush()...)
	assert.Equal(t, []int{1, 2, 3, 4, 5, 6}, got)

	// Late beyond the window: released at once, not lost.
	assert.Equal(t, []int{0}, o.Push("core", 0, time.Time{}, 0))
	// A restarted FreeSWITCH (new Core-UUID) starts its sequences over.
	o.Push("core", 10, time.Time{}, 10)
	assert.Equal(t, []int{10}, o.Push("core2", 1, time.Time{}, 1))
	assert.Equal(t, []int{1}, o.Flush())
}

// Only a gap holds an event: the sequence after the last released goes at
// once, with the held ones it unblocks; the one after a gap waits.
func TestOrderHoldsOnlyBehindAGap(t *testing.T) {
	o := NewOrder[int](64)
	assert.Empty(t, o.Push("core", 10, time.Time{}, 10), "nothing released yet: what came before is unknown")
	assert.Equal(t, []int{10}, o.Flush())
	assert.Equal(t, []int{11}, o.Push("core", 11, time.Time{}, 11))
	assert.Empty(t, o.Push("core", 13, time.Time{}, 13), "12 is missing")
	assert.Empty(t, o.Push("core", 14, time.Time{}, 14))
	assert.Equal(t, []int{12, 13, 14}, o.Push("core", 12, time.Time{}, 12))
	assert.Equal(t, []int{15}, o.Push("core", 15, time.Time{}, 15))
	at := time.Unix(100, 0)
	assert.Empty(t, o.Push("core", 17, at, 17), "16 was not subscribed to: held until released")
	assert.Empty(t, o.Release(at))
	assert.Empty(t, o.Push("core", 19, at.Add(time.Millisecond), 19))
	assert.Equal(t, []int{17}, o.Release(at.Add(time.Nanosecond)))
	assert.Equal(t, []int{19}, o.Release(at.Add(time.Second)))
}

// recorded reads every event of one recorded FreeSWITCH scenario.
func recorded(t *testing.T, dir string) []Fields {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "esl", dir, "events.ndjson"))
	require.NoError(t, err)
	var out []Fields
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f, err := ParseJSON(line)
		require.NoError(t, err)
		out = append(out, f)
	}
	return out
}

// A leg ends when FreeSWITCH says it did (variable_end_uepoch, which its
// CDR keeps), not when CHANNEL_HANGUP_COMPLETE was sent: a slow CDR module
// delays that event by seconds.
func TestDecodeEndIsTheLegsOwn(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "esl", "*", "cdr"))
	require.NoError(t, err)
	checked := 0
	for _, dir := range dirs {
		cdrEnd := map[string]int64{} // leg -> end_uepoch in mod_json_cdr
		files, _ := filepath.Glob(filepath.Join(dir, "*.cdr.json"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			var leg struct {
				Variables struct {
					UUID string `json:"uuid"`
					End  string `json:"end_uepoch"`
				} `json:"variables"`
			}
			require.NoError(t, json.Unmarshal(data, &leg))
			cdrEnd[leg.Variables.UUID], _ = strconv.ParseInt(leg.Variables.End, 10, 64)
		}
		for _, f := range recorded(t, filepath.Base(filepath.Dir(dir))) {
			if f["event-name"] != "CHANNEL_HANGUP_COMPLETE" || cdrEnd[f["unique-id"]] == 0 {
				continue
			}
			// As if the event had left FreeSWITCH five seconds late.
			late, _ := strconv.ParseInt(f["event-date-timestamp"], 10, 64)
			g := Fields{}
			for k, v := range f {
				g[k] = v
			}
			g["event-date-timestamp"] = strconv.FormatInt(late+5e6, 10)
			in, ok, err := DecodeFields(g)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, time.UnixMicro(cdrEnd[f["unique-id"]]), in.Time, "%s leg %s", dir, f["unique-id"])
			checked++
		}
	}
	assert.Greater(t, checked, 30)
}

// g03: intercept bridges the picker's own leg (1001 dialled *8) to the
// ringing caller; the bridge names the caller's leg, a leg of another call.
func TestDecodeBridgeNamesTheOtherLeg(t *testing.T) {
	var bridges []cdr.Input
	for _, f := range recorded(t, "g03_pickup_1001_intercepts_call_ringing_1000") {
		if f["event-name"] == "CHANNEL_BRIDGE" {
			in, ok, err := DecodeFields(f)
			require.NoError(t, err)
			require.True(t, ok)
			bridges = append(bridges, in)
		}
	}
	require.Len(t, bridges, 1)
	b := bridges[0]
	assert.Equal(t, "*8", b.Channel.Exten, "the picker's leg")
	require.NotNil(t, b.Other)
	assert.Equal(t, "e55d8d0f-f811-40df-b2c2-f9d052c2da7a", b.Other.ID, "the carrier caller's leg")
}

// g04: a B-leg's dial says whom it dialled.
func TestDecodeDialledNumber(t *testing.T) {
	dialled := map[string]bool{}
	for _, f := range recorded(t, "g04_park_by_1000_retrieved_by_1001") {
		in, ok, err := DecodeFields(f)
		require.NoError(t, err)
		if ok && in.Kind == cdr.KindDial && in.DialString != "" {
			dialled[in.DialString] = true
		}
	}
	// 701 too: after uuid_bridge FreeSWITCH marks the retriever's leg as
	// originated by the caller's, so its hangup reads as a dial.
	assert.Equal(t, map[string]bool{"1000": true, "701": true}, dialled)
}

// mod_loopback's B leg (loopback/NAME-b) has no originator; it names its
// A leg in other_loopback_leg_uuid (mod_loopback.c, channel_on_init, read
// from FreeSWITCH's source: no recording shows one yet). It belongs to the
// call of that A leg, which the caller dialled: a loopback to voicemail,
// or to a ring group's mobile member, is no call of its own.
func TestDecodeLoopbackBLegBelongsToItsALeg(t *testing.T) {
	f := Fields{
		"event-name": "CHANNEL_CREATE", "event-date-timestamp": "1795351553796887", "unique-id": "b-leg", "channel-name": "loopback/voicemail-b",
		"caller-caller-id-number": "905321234567", "caller-destination-number": "voicemail",
		"variable_other_loopback_leg_uuid": "a-leg", "variable_loopback_leg": "B",
	}
	in, ok, err := DecodeFields(f)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "a-leg", in.Channel.LinkedID)

	// The A leg names the B leg the same way, but it is the caller's: its
	// originator says so.
	f = Fields{
		"event-name": "CHANNEL_CREATE", "event-date-timestamp": "1795351553796887", "unique-id": "a-leg", "channel-name": "loopback/voicemail-a",
		"other-type": "originator", "other-leg-unique-id": "caller",
		"variable_other_loopback_leg_uuid": "b-leg", "variable_loopback_leg": "A",
	}
	in, _, err = DecodeFields(f)
	require.NoError(t, err)
	assert.Equal(t, "caller", in.Channel.LinkedID)
}

// RECORD_START says a leg is recorded, whatever started it (uuid_record
// in FusionPBX's user_record, record_session): switch_ivr_async.c fires
// it with the channel's data and Record-File-Path.
func TestDecodeRecordStartNamesTheFile(t *testing.T) {
	in, ok, err := DecodeFields(Fields{
		"event-name": "RECORD_START", "event-date-timestamp": "1795351553796887", "unique-id": "leg",
		"channel-name": "sofia/internal/1000@192.0.2.2", "record-file-path": "/recordings/leg.wav",
	})
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, cdr.KindRecord, in.Kind)
	assert.Equal(t, "leg", in.Channel.ID)
	assert.Equal(t, "/recordings/leg.wav", in.Channel.Recording)
	assert.Contains(t, Subscription, "RECORD_START")
}

// g05, g06: FreeSWITCH says RECORD_START for voicemail's message as for
// record_session, with the application that records.
func TestDecodeRecordStartSaysWhatRecords(t *testing.T) {
	apps := map[string]string{}
	for _, name := range []string{"g05_noanswer_10s_to_voicemail", "g06_recorded_call_answered_by_1000"} {
		for _, f := range recorded(t, name) {
			if f["event-name"] != "RECORD_START" {
				continue
			}
			in, ok, err := DecodeFields(f)
			require.NoError(t, err)
			require.True(t, ok)
			apps[in.Channel.App] = in.Channel.Recording
		}
	}
	assert.Equal(t, map[string]string{
		"voicemail":      "/var/lib/freeswitch/storage/voicemail/127.0.0.1/1000/msg_f92e1304-94da-43c3-b9b4-5889a7fa7e59.wav",
		"record_session": "/var/lib/freeswitch/recordings/9bde5636-e188-46d6-92d2-b6defc883971.wav",
	}, apps)
}
