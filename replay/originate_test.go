package replay_test

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

// TestOriginatedCalls replays the recorded originated calls (subscribeAll
// socket) after the KindOriginate kanca sends before asking Asterisk, and
// holds the webhooks against what happened: direction OUT from the PBX
// number, the autodial fields, the answer and the key pressed, and the
// PBX's own CDR disposition.
func TestOriginatedCalls(t *testing.T) {
	ref := "ticket-42"
	cb := "http://127.0.0.1:9/cb"
	cases := []struct {
		dir, channel string
		answered     bool
		digit        any
		cause        string
		detail       string
	}{
		// kanca hangs up (DELETE: a soft request) after the message or
		// the key; busy is the far end's refusal; no answer, Asterisk
		// giving up ringing (no hangup request at all).
		{"o01", "1796461943.0", true, nil, "NORMAL_CLEARING", "send_bye"},
		{"o02", "1796461956.1", true, "1", "NORMAL_CLEARING", "send_bye"},
		{"o03", "1796461966.2", false, nil, "USER_BUSY", "recv_refuse"},
		{"o04", "1796461973.3", false, nil, "NO_ANSWER", "send_cancel"},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			ins := inputs(t, filepath.Join("..", "testdata", "ari-originate", tc.dir, "events.ndjson"), ari.Decode, nil)
			require.NotEmpty(t, ins)
			// The first frame of the recording is the channel's creation:
			// kanca announces the channel just before.
			require.Equal(t, tc.channel, ins[0].Channel.ID, "channel id from requests.txt")
			tr := cdr.NewTracker(cdr.DefaultConfig())
			org := cdr.Input{Kind: cdr.KindOriginate, Time: ins[0].Time.Add(-time.Millisecond), Server: ins[0].Server,
				Channel: cdr.Channel{ID: tc.channel},
				Origin:  &cdr.Origin{Number: "908508850000", Callee: "05321234567", AdditionalData: &ref, CallbackURL: &cb}}
			var evs []cdr.Event
			evs = append(evs, tr.Handle(org)...)
			for _, in := range ins {
				evs = append(evs, tr.Handle(in)...)
			}
			require.Zero(t, tr.Calls(), "the call ended")
			var types []cdr.EventType
			for _, e := range evs {
				types = append(types, e.Type)
			}
			require.Equal(t, []cdr.EventType{cdr.CallInit, cdr.CallHangup}, types, "an outbound call: no missing_call")
			for _, e := range evs {
				b, _, err := formats.Encode(formats.JSON, e, formats.Options{Location: time.UTC})
				require.NoError(t, err)
				var m map[string]any
				require.NoError(t, json.Unmarshal(b, &m))
				require.Equal(t, "OUT", m["direction"])
				require.EqualValues(t, 908508850000, m["caller"])
				require.EqualValues(t, 905321234567, m["callee"])
				require.Equal(t, true, m["autodial"])
				require.Equal(t, ref, m["additional_data"])
				require.Equal(t, cb, m["callback_url"])
				if e.Type != cdr.CallHangup {
					require.NotContains(t, m, "gather")
					continue
				}
				require.Equal(t, tc.digit, m["gather"])
				require.Equal(t, tc.cause, m["hangup_cause"])
				require.Equal(t, tc.detail, m["hangup_detail"])
				rec := m["cdr"].(map[string]any)
				if tc.answered {
					require.Equal(t, "SUCCESS", m["result_disposition"])
					require.NotNil(t, rec["answer_time"])
					require.Positive(t, m["talk_duration"])
				} else {
					require.Equal(t, "", m["result_disposition"])
					require.Nil(t, rec["answer_time"])
				}
			}
		})
	}
}

// TestOriginateWithoutChannel: a channel announced but never created (the
// PBX refused the request) is forgotten at the maximum call duration and
// reported finished, so the journal drops it.
func TestOriginateWithoutChannel(t *testing.T) {
	tr := cdr.NewTracker(cdr.DefaultConfig())
	at := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	in := cdr.Input{Kind: cdr.KindOriginate, Time: at, Channel: cdr.Channel{ID: "kanca-1"}, Origin: &cdr.Origin{Number: "908508850000", Callee: "905321234567"}}
	require.True(t, tr.Needs(in))
	require.Empty(t, tr.Handle(in))
	require.Empty(t, tr.Finished(nil))
	tr.Expire(at.Add(cdr.DefaultConfig().MaxCallDuration+time.Minute), nil)
	require.Equal(t, []string{"kanca-1"}, tr.Finished(nil))
}

// TestOriginatedCallSurvivesRestart: the KindOriginate is journaled with
// the channel's inputs, so a kanca restarted mid-call still sends the
// call's hangup OUT with its autodial fields and the key pressed.
func TestOriginatedCallSurvivesRestart(t *testing.T) {
	ins := inputs(t, filepath.Join("..", "testdata", "ari-originate", "o02", "events.ndjson"), ari.Decode, nil)
	ref := "INC-7"
	org := cdr.Input{Kind: cdr.KindOriginate, Time: ins[0].Time, Server: ins[0].Server, Channel: cdr.Channel{ID: ins[0].Channel.ID},
		Origin: &cdr.Origin{Number: "908508850000", Callee: "05321234567", AdditionalData: &ref}}
	all := append([]cdr.Input{org}, ins...)
	half := len(all) / 2
	first := cdr.NewTracker(cdr.DefaultConfig())
	var journal []cdr.Input
	for _, in := range all[:half] {
		if first.Needs(in) {
			b, err := json.Marshal(in) // as the store keeps it
			require.NoError(t, err)
			var back cdr.Input
			require.NoError(t, json.Unmarshal(b, &back))
			journal = append(journal, back)
		}
		first.Handle(in)
	}
	second := cdr.NewTracker(cdr.DefaultConfig())
	require.Empty(t, second.Restore(journal))
	var hangup *cdr.Event
	for _, in := range all[half:] {
		for _, e := range second.Handle(in) {
			if e.Type == cdr.CallHangup {
				hangup = &e
			}
		}
	}
	require.NotNil(t, hangup)
	require.Equal(t, cdr.Outbound, hangup.Direction)
	require.NotNil(t, hangup.Autodial)
	require.Equal(t, ref, *hangup.Autodial.AdditionalData)
	require.Equal(t, "1", hangup.Digit)
	require.Equal(t, "SUCCESS", hangup.ResultDisposition)
}
