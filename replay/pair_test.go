package replay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/replay"
)

// pairs are the same scenario recorded on Asterisk and on FreeSWITCH.
// otherEnd marks pairs whose recordings ended from different sides (the
// callee hung up on one PBX, the caller on the other): their hangup
// details differ and are left out.
var pairs = []struct {
	asterisk, freeswitch string
	otherEnd             bool
}{
	{"s01-answered-caller-hangs-up", "f01_inbound_answered_caller_hangup", false},
	{"s02-answered-callee-hangs-up", "f02_inbound_answered_callee_hangup", false},
	{"s03-no-answer-timeout", "f03_inbound_noanswer_timeout_missed", false},
	{"s04-caller-abandons-ringing", "f04_inbound_caller_cancel_while_ringing", false},
	{"s05-busy", "f05_inbound_callee_busy_486", false},
	{"s06-ivr-menu-dtmf-to-extension", "f06_inbound_ivr_dtmf1_to_1000", false},
	{"s12-ring-group", "f07_inbound_ringgroup_1002_answers", false},
	{"s07-queue-member-answers", "f07b_inbound_callcenter_queue_1002_answers", false},
	{"s08-outbound-answered", "f08_outbound_1000_to_05321112233_answered", false},
	{"s09-inbound-fax", "f09_inbound_fax_rxfax_no_sender", false},
	{"s11-five-concurrent", "f10_two_concurrent_inbound", false},
	{"t01_attended_transfer_star2", "g01_attended_transfer_1000_to_1001", false},
	{"t02_blind_transfer_hashhash", "g02_blind_transfer_1000_to_1001", true},
	{"t03_call_pickup_star8", "g03_pickup_1001_intercepts_call_ringing_1000", false},
	{"t04_park_and_retrieve", "g04_park_by_1000_retrieved_by_1001", false},
	{"t05_voicemail_after_no_answer", "g05_noanswer_10s_to_voicemail", false},
	{"t06_recorded_call_mixmonitor", "g06_recorded_call_answered_by_1000", false},
	{"t07_forward_to_mobile_after_no_answer", "g07_noanswer_forward_to_external", true},
}

// callShapes reads webhook bodies and describes each call by what must not
// depend on the PBX: event types in order, direction, causes, dispositions,
// call type, the callflow's redirections and which steps were answered.
// Ids, times, numbers and menu or queue names are left out: the two
// dialplans name them differently.
func callShapes(t *testing.T, out []byte) []string {
	t.Helper()
	type raw struct {
		EventType         string `json:"event_type"`
		UUID              string `json:"uuid"`
		Direction         string `json:"direction"`
		HangupCause       string `json:"hangup_cause"`
		HangupDetail      string `json:"hangup_detail"`
		ResultDisposition string `json:"result_disposition"`
		CDR               *struct {
			CallType    string  `json:"bf_calltype"`
			Recorded    bool    `json:"call_record"`
			Direction   string  `json:"bf_direction"`
			AnswerTime  *string `json:"answer_time"`
			HangupCause string  `json:"hangup_cause"`
			Disposition string  `json:"sip_hangup_disposition"`
			Callflow    []struct {
				AnswerTime  *string `json:"answer_time"`
				HangupTime  *string `json:"hangup_time"`
				Redirection string  `json:"redirection"`
			} `json:"callflow"`
		} `json:"cdr"`
	}
	var order []string
	shape := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var b raw
		require.NoError(t, dec.Decode(&b))
		if _, ok := shape[b.UUID]; !ok {
			order = append(order, b.UUID)
		}
		s := fmt.Sprintf("%s %s", b.EventType, b.Direction)
		if b.CDR != nil {
			var flow []string
			for _, st := range b.CDR.Callflow {
				flow = append(flow, fmt.Sprintf("%s(answered=%t,ended=%t)", st.Redirection, st.AnswerTime != nil, st.HangupTime != nil))
			}
			s += fmt.Sprintf(" cause=%s detail=%s result=%q type=%s recorded=%t cdr=%s/%s/%s answered=%t flow=[%s]",
				b.HangupCause, b.HangupDetail, b.ResultDisposition, b.CDR.CallType, b.CDR.Recorded,
				b.CDR.Direction, b.CDR.HangupCause, b.CDR.Disposition, b.CDR.AnswerTime != nil, strings.Join(flow, " "))
		}
		shape[b.UUID] = append(shape[b.UUID], s)
	}
	var calls []string
	for _, id := range order {
		calls = append(calls, strings.Join(shape[id], "\n"))
	}
	return calls
}

// TestAsteriskFreeSWITCHPairs: one scenario gives the same webhooks on
// both PBXs, but for ids, times and names. s11 has five calls and f10 two,
// all alike: there every call of both must have the one shape.
func TestAsteriskFreeSWITCHPairs(t *testing.T) {
	for _, p := range pairs {
		t.Run(p.asterisk+"~"+p.freeswitch, func(t *testing.T) {
			var ast bytes.Buffer
			_, err := replayFiles([]string{filepath.Join("..", "testdata", "ari", p.asterisk, "events.ndjson")}, &ast)
			require.NoError(t, err)
			a := callShapes(t, ast.Bytes())
			f := callShapes(t, eslReplay(t, eslOptions(), filepath.Join("..", "testdata", "esl", p.freeswitch, "events.ndjson")))
			require.NotEmpty(t, a)
			require.NotEmpty(t, f)
			if p.otherEnd {
				a, f = withoutEnd(a), withoutEnd(f)
			}
			if len(a) != len(f) {
				a, f = slices.Compact(slices.Sorted(slices.Values(a))), slices.Compact(slices.Sorted(slices.Values(f)))
			}
			assert.Equal(t, a, f)
		})
	}
}

// hangupDetail matches who ended a call in a shape.
var hangupDetail = regexp.MustCompile(`(detail=|/)(recv|send)_[a-z]+`)

func withoutEnd(shapes []string) []string {
	out := make([]string, len(shapes))
	for i, s := range shapes {
		out[i] = hangupDetail.ReplaceAllString(s, "${1}?")
	}
	return out
}

func replayFiles(files []string, w *bytes.Buffer) (any, error) {
	return replay.Files(files, nil, w, options())
}

// TestCallShapesTellScenariosApart keeps the pair test honest: a caller's
// and a callee's hangup of the same call do not look alike.
func TestCallShapesTellScenariosApart(t *testing.T) {
	f01 := callShapes(t, eslReplay(t, eslOptions(), filepath.Join("..", "testdata", "esl", pairs[0].freeswitch, "events.ndjson")))
	f02 := callShapes(t, eslReplay(t, eslOptions(), filepath.Join("..", "testdata", "esl", pairs[1].freeswitch, "events.ndjson")))
	require.Len(t, f01, 1)
	assert.Contains(t, f01[0], "detail=recv_bye")
	assert.Contains(t, f02[0], "detail=send_bye")
	assert.NotEqual(t, f01, f02)
}
