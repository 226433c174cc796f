package replay_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/replay"
)

// fsServer is the switch name of the FreeSWITCH that recorded the traces:
// esl names the server by it.
const fsServer = "fs-capture"

func eslOptions() replay.Options {
	return replay.Options{Decode: esl.Decode, Reorder: esl.Reorder, Tracker: cdr.DefaultConfig(), Format: formats.Options{Location: turkey}}
}

func eslScenarios(t *testing.T) []string {
	var dirs []string
	for _, set := range []string{"f*", "g*"} {
		d, err := filepath.Glob(filepath.Join("..", "testdata", "esl", set))
		require.NoError(t, err)
		dirs = append(dirs, d...)
	}
	require.Len(t, dirs, 18)
	return dirs
}

func eslReplay(t *testing.T, o replay.Options, files ...string) []byte {
	t.Helper()
	var out bytes.Buffer
	_, err := replay.Files(files, nil, &out, o)
	require.NoError(t, err)
	return out.Bytes()
}

// TestGoldenFreeSWITCH replays every recorded FreeSWITCH scenario, as the
// socket delivered it, and compares the webhook bodies with the reviewed
// golden output.
func TestGoldenFreeSWITCH(t *testing.T) {
	for _, dir := range eslScenarios(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			out := eslReplay(t, eslOptions(), filepath.Join(dir, "events.ndjson"))
			golden := filepath.Join("testdata", "esl", name+".ndjson")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, out, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./replay -update to create it")
			assert.Equal(t, string(want), string(out))
		})
	}
}

// TestFreeSWITCHArrivalOrder: the socket's own order, put back in order by
// esl.Reorder, gives what the sequence-sorted recording gives; without
// reordering the traces still decode.
func TestFreeSWITCHArrivalOrder(t *testing.T) {
	n := 0
	for _, dir := range eslScenarios(t) {
		sorted := filepath.Join(dir, "events.by-sequence.ndjson")
		if _, err := os.Stat(sorted); err != nil {
			continue
		}
		n++
		t.Run(filepath.Base(dir), func(t *testing.T) {
			o := eslOptions()
			o.Reorder = nil
			want := eslReplay(t, o, sorted)
			got := eslReplay(t, eslOptions(), filepath.Join(dir, "events.ndjson"))
			assert.Equal(t, string(want), string(got))
		})
	}
	assert.Equal(t, 12, n)
}

// fsLeg is what mod_json_cdr wrote about one leg.
type fsLeg struct {
	Variables struct {
		UUID                 string `json:"uuid"`
		Start                string `json:"start_epoch"`
		StartUs              string `json:"start_uepoch"`
		Answer               string `json:"answer_epoch"`
		End                  string `json:"end_epoch"`
		HangupCause          string `json:"hangup_cause"`
		Disposition          string `json:"sip_hangup_disposition"`
		OriginateDisposition string `json:"originate_disposition"`
		LastApp              string `json:"last_app"`
		CCMember             string `json:"cc_member_session_uuid"`
		Direction            string `json:"direction"`
		// What links legs: the leg that originated it, the leg it was
		// bridged to (uuid_bridge after intercept, att_xfer, valet_park).
		Originator     string `json:"originator"`
		OriginatingLeg string `json:"originating_leg_uuid"`
		SignalBond     string `json:"signal_bond"`
		LastBridgeTo   string `json:"last_bridge_to"`
		BridgeUUID     string `json:"bridge_uuid"`
	} `json:"variables"`
	Callflow []struct {
		Profile struct {
			CallerID    string `json:"caller_id_number"`
			ANI         string `json:"ani"`
			Destination string `json:"destination_number"`
		} `json:"caller_profile"`
	} `json:"callflow"`
}

func (l fsLeg) epoch(t *testing.T, s string) float64 {
	if s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

// number is who the leg reached: an outbound leg's destination, an
// inbound leg's ANI (FreeSWITCH rewrites its caller id after a
// uuid_bridge).
func (l fsLeg) number() string {
	if len(l.Callflow) == 0 {
		return ""
	}
	p := l.Callflow[len(l.Callflow)-1].Profile
	switch {
	case l.Variables.Direction == "outbound":
		return p.Destination
	case p.ANI != "":
		return p.ANI
	}
	return p.CallerID
}

// fsCall is one call as FreeSWITCH's CDRs tell it: the caller's leg and
// every leg that ever met it.
type fsCall struct {
	a  fsLeg
	bs []fsLeg
}

// fsCalls groups the CDR's legs into calls: legs linked by an originate
// or a bridge are one call, whose first inbound leg is the caller's.
func fsCalls(t *testing.T, dir string) map[string]*fsCall {
	files, err := filepath.Glob(filepath.Join(dir, "cdr", "*.cdr.json"))
	require.NoError(t, err)
	legs := map[string]fsLeg{}
	parent := map[string]string{}
	var find func(string) string
	find = func(id string) string {
		if p, ok := parent[id]; ok && p != id {
			parent[id] = find(p)
			return parent[id]
		}
		return id
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var l fsLeg
		require.NoError(t, json.Unmarshal(data, &l), f)
		legs[l.Variables.UUID] = l
	}
	for id, l := range legs {
		v := l.Variables
		for _, o := range []string{v.CCMember, v.Originator, v.OriginatingLeg, v.SignalBond, v.LastBridgeTo, v.BridgeUUID} {
			if _, ok := legs[o]; ok && o != id {
				parent[find(id)] = find(o)
			}
		}
	}
	groups := map[string][]fsLeg{}
	for id, l := range legs {
		groups[find(id)] = append(groups[find(id)], l)
	}
	calls := map[string]*fsCall{}
	for _, g := range groups {
		first := -1
		for i, l := range g {
			if l.Variables.Direction != "inbound" {
				continue
			}
			if first < 0 || l.epoch(t, l.Variables.StartUs) < g[first].epoch(t, g[first].Variables.StartUs) {
				first = i
			}
		}
		require.GreaterOrEqual(t, first, 0, "a call with no inbound leg in %s", dir)
		c := &fsCall{a: g[first]}
		for i, l := range g {
			if i != first {
				c.bs = append(c.bs, l)
			}
		}
		calls[c.a.Variables.UUID] = c
	}
	return calls
}

// tookCall is the leg that answered last of those that are not the
// caller's: who the caller talked to in the end ("" when nobody did).
func (c *fsCall) tookCall(t *testing.T) string {
	who, at := "", 0.0
	for _, b := range c.bs {
		if a := b.epoch(t, b.Variables.Answer); a > 0 && a >= at {
			who, at = b.number(), a
		}
	}
	return who
}

// TestAgainstFreeSWITCHCDR checks every scenario's webhooks against the
// CDRs FreeSWITCH wrote for the same calls: times to the second, the cause
// (the originate's failure when nothing answered: FreeSWITCH keeps
// NORMAL_CLEARING on the caller's leg after a timeout), the caller leg's
// sip_hangup_disposition exactly, and who took the call.
func TestAgainstFreeSWITCHCDR(t *testing.T) {
	for _, dir := range eslScenarios(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got := map[string][]body{}
			dec := json.NewDecoder(bytes.NewReader(eslReplay(t, eslOptions(), filepath.Join(dir, "events.ndjson"))))
			for dec.More() {
				var b body
				require.NoError(t, dec.Decode(&b))
				got[b.UUID] = append(got[b.UUID], b)
			}
			for id, fc := range fsCalls(t, dir) {
				uuid := cdr.CallUUID(fsServer, id)
				evs := got[uuid]
				delete(got, uuid)
				fsCrossCheck(t, id, fc, evs)
			}
			assert.Empty(t, got, "webhooks for calls FreeSWITCH has no CDR of")
		})
	}
}

func fsCrossCheck(t *testing.T, id string, fc *fsCall, evs []body) {
	t.Helper()
	require.NotEmpty(t, evs, "call %s produced no webhook", id)
	assert.Equal(t, "call_init", evs[0].EventType, "call %s", id)
	var hangup *body
	missing := false
	for i := range evs {
		switch evs[i].EventType {
		case "call_hangup":
			require.Nil(t, hangup, "call %s: two call_hangup", id)
			hangup = &evs[i]
		case "missing_call":
			require.NotNil(t, hangup, "call %s: missing_call before call_hangup", id)
			missing = true
		}
	}
	require.NotNil(t, hangup, "call %s: no call_hangup", id)
	rec := hangup.CDR
	require.NotNil(t, rec)
	v := fc.a.Variables

	start, end := fc.a.epoch(t, v.Start), fc.a.epoch(t, v.End)
	answer := fc.a.epoch(t, v.Answer)
	person := false // a B-leg (extension, agent, outside party) answered
	for _, b := range fc.bs {
		if b.epoch(t, b.Variables.Answer) > 0 {
			person = true
			if b.Variables.End > v.End {
				end = b.epoch(t, b.Variables.End)
			}
		}
	}
	assert.InDelta(t, start, isoSeconds(t, rec.CallTime), 1, "call %s call_time", id)
	assert.InDelta(t, end, isoSeconds(t, rec.HangupTime), 1, "call %s hangup_time", id)
	if answer == 0 {
		assert.Nil(t, rec.AnswerTime, "call %s: FreeSWITCH saw no answer", id)
		assert.Zero(t, hangup.TalkDuration)
	} else if assert.NotNil(t, rec.AnswerTime, "call %s: FreeSWITCH saw an answer", id) {
		assert.InDelta(t, answer, isoSeconds(t, *rec.AnswerTime), 1, "call %s answer_time", id)
		assert.InDelta(t, end-answer, float64(hangup.TalkDuration), 1, "call %s talk_duration", id)
	}

	cause := v.HangupCause
	if answer == 0 && v.OriginateDisposition != "" && v.OriginateDisposition != "failure" && v.OriginateDisposition != "SUCCESS" {
		cause = v.OriginateDisposition
	}
	assert.Equal(t, cause, hangup.HangupCause, "call %s", id)
	assert.Equal(t, v.Disposition, rec.Disposition, "call %s", id)
	assert.Equal(t, rec.Disposition, hangup.HangupDetail)
	assert.Equal(t, rec.HangupCause, hangup.HangupCause)

	fax := v.LastApp == "rxfax"
	assert.Equal(t, map[bool]string{true: "fax", false: "voice"}[fax], rec.CallType, "call %s", id)
	if person {
		assert.Equal(t, "SUCCESS", hangup.ResultDisposition, "call %s", id)
	} else {
		assert.Empty(t, hangup.ResultDisposition, "call %s", id)
	}
	assert.Equal(t, hangup.Direction == "IN" && !person && !fax, missing, "call %s: missing_call", id)
	assert.NotEmpty(t, rec.Callflow)
	assertTookCall(t, id, fc.tookCall(t), rec)
}
