package replay_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/replay"
)

// pairs are the same scenario recorded on Asterisk and on FreeSWITCH.
var pairs = []struct{ asterisk, freeswitch string }{
	{"s01-answered-caller-hangs-up", "f01_inbound_answered_caller_hangup"},
	{"s02-answered-callee-hangs-up", "f02_inbound_answered_callee_hangup"},
	{"s03-no-answer-timeout", "f03_inbound_noanswer_timeout_missed"},
	{"s04-caller-abandons-ringing", "f04_inbound_caller_cancel_while_ringing"},
	{"s05-busy", "f05_inbound_callee_busy_486"},
	{"s06-ivr-menu-dtmf-to-extension", "f06_inbound_ivr_dtmf1_to_1000"},
	{"s12-ring-group", "f07_inbound_ringgroup_1002_answers"},
	{"s07-queue-member-answers", "f07b_inbound_callcenter_queue_1002_answers"},
	{"s08-outbound-answered", "f08_outbound_1000_to_05321112233_answered"},
	{"s09-inbound-fax", "f09_inbound_fax_rxfax_no_sender"},
	{"s11-five-concurrent", "f10_two_concurrent_inbound"},
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
			s += fmt.Sprintf(" cause=%s detail=%s result=%q type=%s cdr=%s/%s/%s answered=%t flow=[%s]",
				b.HangupCause, b.HangupDetail, b.ResultDisposition, b.CDR.CallType,
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
			if len(a) != len(f) {
				a, f = slices.Compact(slices.Sorted(slices.Values(a))), slices.Compact(slices.Sorted(slices.Values(f)))
			}
			assert.Equal(t, a, f)
		})
	}
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
