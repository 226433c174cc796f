package replay_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/replay"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// turkey is the reference PBX's zone, fixed so the goldens do not depend on
// the machine's.
var turkey = time.FixedZone("+03", 3*3600)

func options() replay.Options {
	return replay.Options{Decode: ari.Decode, Tracker: cdr.DefaultConfig(), Format: formats.Options{Location: turkey}}
}

// scenarios are the recorded Asterisk calls: s* ring and answer, menus,
// groups, fax; t* transfers, pickup, parking, voicemail, recording and
// forwards.
func scenarios(t *testing.T) []string {
	var dirs []string
	for _, set := range []string{"s*", "t*"} {
		d, err := filepath.Glob(filepath.Join("..", "testdata", "ari", set))
		require.NoError(t, err)
		require.NotEmpty(t, d)
		dirs = append(dirs, d...)
	}
	return dirs
}

// TestGolden replays every recorded Asterisk scenario and compares the
// webhook bodies with the reviewed golden output.
func TestGolden(t *testing.T) {
	for _, dir := range scenarios(t) {
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			_, err := replay.Files([]string{filepath.Join(dir, "events.ndjson")}, nil, &out, options())
			require.NoError(t, err)
			golden := filepath.Join("testdata", name+".ndjson")
			if *update {
				require.NoError(t, os.WriteFile(golden, out.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run go test ./replay -update to create it")
			assert.Equal(t, string(want), out.String())
		})
	}
}

// body is a decoded webhook as a receiver sees it.
type body struct {
	EventType         string   `json:"event_type"`
	UUID              string   `json:"uuid"`
	Direction         string   `json:"direction"`
	Timestamp         int64    `json:"timestamp"`
	Caller            any      `json:"caller"`
	Callee            any      `json:"callee"`
	Destination       any      `json:"destination"`
	HangupCause       string   `json:"hangup_cause"`
	TalkDuration      int      `json:"talk_duration"`
	HangupDetail      string   `json:"hangup_detail"`
	ResultDisposition string   `json:"result_disposition"`
	CDR               *cdrBody `json:"cdr"`
}

type cdrBody struct {
	CallType    string  `json:"bf_calltype"`
	CallTime    string  `json:"call_time"`
	AnswerTime  *string `json:"answer_time"`
	HangupTime  string  `json:"hangup_time"`
	HangupCause string  `json:"hangup_cause"`
	Disposition string  `json:"sip_hangup_disposition"`
	Callflow    []struct {
		Callee      any     `json:"callee"`
		AnswerTime  *string `json:"answer_time"`
		HangupTime  *string `json:"hangup_time"`
		Redirection string  `json:"redirection"`
	} `json:"callflow"`
}

func replayAll(t *testing.T, files ...string) map[string][]body {
	t.Helper()
	var out bytes.Buffer
	_, err := replay.Files(files, nil, &out, options())
	require.NoError(t, err)
	calls := map[string][]body{}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var b body
		require.NoError(t, dec.Decode(&b))
		calls[b.UUID] = append(calls[b.UUID], b)
	}
	return calls
}

// pbxCall is what Asterisk's own CDR and CEL say about one call.
type pbxCall struct {
	linkedID    string
	start, end  float64
	answer      float64 // 0: never answered
	disposition map[string]bool
	callerChan  string // the channel whose uniqueid is the linkedid
	hangupBy    string // CEL HANGUP hangupsource of the caller's channel
	// tookCall is the number whom the caller's channel was last answered
	// by (the dstchannel of its last ANSWERED row); "" when nobody was.
	tookCall string
	tookAt   float64
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	require.NoError(t, err)
	return rows
}

func num(t *testing.T, s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

// pbxCalls reads cdr.csv and cel.csv (columns as Asterisk's cdr_custom and
// cel_custom write them in the reference configuration).
func pbxCalls(t *testing.T, dir string) map[string]*pbxCall {
	calls := map[string]*pbxCall{}
	for _, r := range readCSV(t, filepath.Join(dir, "cdr.csv")) {
		// src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,start,answer,end,
		// start(epoch),answer(epoch),end(epoch),duration,billsec,disposition,amaflags,uniqueid,linkedid,...
		id := r[19]
		c := calls[id]
		if c == nil {
			c = &pbxCall{linkedID: id, start: math.Inf(1), disposition: map[string]bool{}}
			calls[id] = c
		}
		c.start = math.Min(c.start, num(t, r[11]))
		c.end = math.Max(c.end, num(t, r[13]))
		if a := num(t, r[12]); a > 0 && (c.answer == 0 || a < c.answer) {
			c.answer = a
		}
		c.disposition[r[16]] = true
		if r[18] == id {
			c.callerChan = r[4]
			if a := num(t, r[12]); r[5] != "" && r[16] == "ANSWERED" && a >= c.tookAt {
				c.tookCall, c.tookAt = dstNumber(r[5], r[7]), a
			}
		}
	}
	for _, r := range readCSV(t, filepath.Join(dir, "cel.csv")) {
		// EventType,EventTime,CIDName,CIDNum,ANI,RDNIS,DNID,Exten,Context,ChanName,AppName,AppData,
		// AMAFlags,AccountCode,UniqueID,LinkedID,Peer,PeerAccount,UserField,Extra
		if r[0] != "HANGUP" || r[14] != r[15] || calls[r[15]] == nil {
			continue
		}
		var extra struct {
			Source string `json:"hangupsource"`
		}
		require.NoError(t, json.Unmarshal([]byte(r[19]), &extra))
		calls[r[15]].hangupBy = extra.Source
	}
	return calls
}

// dstNumber reads whom a CDR row's dstchannel reached: PJSIP/1001-0000002e
// and Local/1001@from-internal-00000002;1 name the extension; a trunk's
// channel names the trunk, so the number is in the Dial's data
// (PJSIP/05321234567@trunk,30).
func dstNumber(dstchannel, lastdata string) string {
	res := dstchannel[strings.IndexByte(dstchannel, '/')+1:]
	res, _, _ = strings.Cut(res, "@")
	if i := strings.LastIndexByte(res, '-'); i > 0 && !strings.HasPrefix(dstchannel, "Local/") {
		res = res[:i]
	}
	if strings.Trim(res, "0123456789") == "" {
		return res
	}
	first, _, _ := strings.Cut(lastdata, ",")
	first = first[strings.IndexByte(first, '/')+1:]
	n, _, _ := strings.Cut(first, "@")
	return n
}

// assertTookCall: the callflow's last answered step for a person names
// whom the PBX says the caller talked to last, and there is one exactly
// when the PBX says a person answered.
func assertTookCall(t *testing.T, id, want string, rec *cdrBody) {
	t.Helper()
	got := ""
	for _, st := range rec.Callflow {
		if st.AnswerTime == nil || !strings.Contains(st.Redirection, "EXTENSION") && !strings.Contains(st.Redirection, "EXTERNAL") {
			continue
		}
		switch v := st.Callee.(type) {
		case float64:
			got = strconv.FormatFloat(v, 'f', -1, 64)
		case string:
			got = v
		}
	}
	if want == "" {
		assert.Empty(t, got, "call %s: the PBX says no person answered", id)
		return
	}
	// kanca sends outside numbers in international form (0532... -> 90532...).
	assert.True(t, got == want || got != "" && strings.HasSuffix(got, strings.TrimLeft(want, "0")),
		"call %s: the PBX says %s took the call, the callflow says %q", id, want, got)
}

// asteriskID reads the entity id the trace's frames carry.
func asteriskID(t *testing.T, events string) string {
	data, err := os.ReadFile(events)
	require.NoError(t, err)
	var f struct {
		ID string `json:"asterisk_id"`
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	require.NoError(t, json.Unmarshal(line, &f))
	return f.ID
}

func isoSeconds(t *testing.T, s string) float64 {
	tm, err := time.Parse(time.RFC3339, s)
	require.NoError(t, err)
	return float64(tm.Unix())
}

// crossCheck holds kanca's webhooks for one call against Asterisk's own
// record of it: times to the second, answered or not, busy, missed, and
// who hung up.
func crossCheck(t *testing.T, pc *pbxCall, evs []body) {
	t.Helper()
	require.NotEmpty(t, evs, "call %s produced no webhook", pc.linkedID)
	assert.Equal(t, "call_init", evs[0].EventType, "call %s", pc.linkedID)
	var hangup *body
	missing := false
	for i := range evs {
		switch evs[i].EventType {
		case "call_hangup":
			require.Nil(t, hangup, "call %s: two call_hangup", pc.linkedID)
			hangup = &evs[i]
		case "missing_call":
			require.NotNil(t, hangup, "call %s: missing_call before call_hangup", pc.linkedID)
			missing = true
		}
	}
	require.NotNil(t, hangup, "call %s: no call_hangup", pc.linkedID)
	rec := hangup.CDR
	require.NotNil(t, rec)

	// ISO times have second precision and Asterisk's CDR stamps its own
	// moments within milliseconds of the events: allow one second.
	assert.InDelta(t, pc.start, isoSeconds(t, rec.CallTime), 1, "call %s call_time", pc.linkedID)
	assert.InDelta(t, pc.end, isoSeconds(t, rec.HangupTime), 1, "call %s hangup_time", pc.linkedID)
	if pc.answer == 0 {
		assert.Nil(t, rec.AnswerTime, "call %s: Asterisk saw no answer", pc.linkedID)
		assert.Zero(t, hangup.TalkDuration)
	} else if assert.NotNil(t, rec.AnswerTime, "call %s: Asterisk saw an answer", pc.linkedID) {
		assert.InDelta(t, pc.answer, isoSeconds(t, *rec.AnswerTime), 1, "call %s answer_time", pc.linkedID)
		assert.InDelta(t, pc.end-pc.answer, float64(hangup.TalkDuration), 1, "call %s talk_duration", pc.linkedID)
	}
	if pc.disposition["BUSY"] {
		assert.Equal(t, "USER_BUSY", hangup.HangupCause, "call %s", pc.linkedID)
	}
	if !pc.disposition["ANSWERED"] {
		assert.True(t, missing, "call %s: never answered, so it is a missing call", pc.linkedID)
		assert.Empty(t, hangup.ResultDisposition)
	}
	if pc.callerChan != "" && pc.hangupBy != "" {
		callerHungUp := pc.hangupBy == pc.callerChan
		assert.Equal(t, callerHungUp, strings.HasPrefix(rec.Disposition, "recv_"),
			"call %s: CEL says %s hung up, kanca says %s", pc.linkedID, pc.hangupBy, rec.Disposition)
	}
	assert.Equal(t, rec.Disposition, hangup.HangupDetail)
	assert.Equal(t, rec.HangupCause, hangup.HangupCause)
	assert.NotEmpty(t, rec.Callflow)
	if rec.CallType != "fax" {
		assertTookCall(t, pc.linkedID, pc.tookCall, rec)
		// A person answering is success; voicemail or a menu alone is a
		// missed call.
		person := pc.tookCall != ""
		assert.Equal(t, person, hangup.ResultDisposition == "SUCCESS", "call %s result_disposition", pc.linkedID)
		assert.Equal(t, !person && hangup.Direction == "IN", missing, "call %s missing_call", pc.linkedID)
	}
}

// TestAgainstAsteriskCDR checks every scenario's webhooks against the CDR
// and CEL rows Asterisk wrote for the same calls.
func TestAgainstAsteriskCDR(t *testing.T) {
	for _, dir := range scenarios(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			events := filepath.Join(dir, "events.ndjson")
			got := replayAll(t, events)
			server := asteriskID(t, events)
			pcs := pbxCalls(t, dir)
			for id, pc := range pcs {
				uuid := cdr.CallUUID(server, id)
				crossCheck(t, pc, got[uuid])
				delete(got, uuid)
			}
			assert.Empty(t, got, "webhooks for calls Asterisk has no CDR of")
		})
	}
}

// TestLoadAgainstAsteriskCDR replays 600 real calls at 10 calls/s and holds
// each one against its CDR and the plan SIPp followed.
func TestLoadAgainstAsteriskCDR(t *testing.T) {
	dir := filepath.Join("..", "testdata", "ari-load", "run1_10cps")
	got := replayAll(t, filepath.Join(dir, "events.ndjson.gz"))
	pcs := pbxCalls(t, dir)
	require.Len(t, pcs, 600)

	plan := map[string]string{} // caller number -> A answered, B busy, C cancelled
	data, err := os.ReadFile(filepath.Join(dir, "calls_plan.csv"))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ";")
		if len(f) >= 2 && strings.HasPrefix(f[0], "0") {
			plan["9"+f[0]] = f[1]
		}
	}
	require.Len(t, plan, 600)

	kinds := map[string]int{}
	for id, pc := range pcs {
		uuid := cdr.CallUUID("02:fc:00:00:00:01", id)
		evs := got[uuid]
		crossCheck(t, pc, evs)
		delete(got, uuid)
		if t.Failed() || len(evs) == 0 {
			continue
		}
		h := evs[len(evs)-1]
		if h.EventType == "missing_call" {
			h = evs[len(evs)-2]
		}
		kind := plan[strconv.FormatInt(int64(h.Caller.(float64)), 10)]
		kinds[kind]++
		switch kind {
		case "A":
			assert.Equal(t, []string{"NORMAL_CLEARING", "recv_bye", "SUCCESS"}, []string{h.HangupCause, h.HangupDetail, h.ResultDisposition}, "call %s", id)
		case "B":
			assert.Equal(t, []string{"USER_BUSY", "send_refuse", ""}, []string{h.HangupCause, h.HangupDetail, h.ResultDisposition}, "call %s", id)
		case "C":
			assert.Equal(t, []string{"ORIGINATOR_CANCEL", "recv_cancel", ""}, []string{h.HangupCause, h.HangupDetail, h.ResultDisposition}, "call %s", id)
		default:
			t.Errorf("call %s: caller %v is not in the plan", id, h.Caller)
		}
	}
	assert.Equal(t, map[string]int{"A": 420, "B": 90, "C": 90}, kinds)
	assert.Empty(t, got, "webhooks for calls Asterisk has no CDR of")
}

// TestUnreadVariablesChangeNothing: dropping every ChannelVarset frame of
// a variable the tracker does not read (ari.Unread with
// cdr.Config.ReadsVariable) before decoding gives the same webhooks, on
// every recording.
func TestUnreadVariablesChangeNothing(t *testing.T) {
	cfg := cdr.DefaultConfig()
	filtered := options()
	dropped := 0
	filtered.Decode = func(frame []byte) (cdr.Input, bool, error) {
		if _, unread := ari.Unread(frame, cfg.ReadsVariable); unread {
			dropped++
			return cdr.Input{}, false, nil
		}
		return ari.Decode(frame)
	}
	for _, dir := range scenarios(t) {
		events := filepath.Join(dir, "events.ndjson")
		var all, some bytes.Buffer
		_, err := replay.Files([]string{events}, nil, &all, options())
		require.NoError(t, err)
		_, err = replay.Files([]string{events}, nil, &some, filtered)
		require.NoError(t, err)
		assert.Equal(t, all.String(), some.String(), filepath.Base(dir))
	}
	assert.Greater(t, dropped, 1000)
}
