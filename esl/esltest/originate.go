package esltest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Callee says what the called party of an originated call does. The
// zero value answers and presses nothing.
type Callee struct {
	// Busy: the far end answers 486; the leg ends USER_BUSY
	// (recv_refuse) and the job answers "-ERR USER_BUSY".
	Busy bool
	// NoAnswer: it rings until originate_timeout; FreeSWITCH cancels the
	// leg with NO_ANSWER (send_cancel) and the job answers
	// "-ERR NO_ANSWER".
	NoAnswer bool
	// Digit is pressed once the first playback starts (a DTMF event).
	Digit string
}

// Originated is one "originate" the fake took (by api or bgapi).
type Originated struct {
	Command  string            // the originate command as received
	UUID     string            // origination_uuid, or the one the fake chose
	Endpoint string            // the dial string after the {vars}: sofia/gateway/carrier/0532...
	Vars     map[string]string // the {var=value,...} block
	Target   string            // &park(), or the extension of "EXTEN XML CONTEXT"
	Context  string            // the dialplan context, for an extension target
	Plays    []string          // the file of each uuid_broadcast, in order
	Killed   bool              // uuid_kill
	Gone     bool              // the leg has hung up, whoever ended it

	name    string
	number  string // the number dialled, the endpoint's last part
	created time.Time
	answer  time.Time
	digit   string
	app     string // the &application(data) target, once running
	appData string
}

// origin is the fake's record of originated legs.
type origin struct {
	mu     sync.Mutex
	callee func(endpoint string) Callee
	calls  []*Originated
	byID   map[string]*Originated
	seq    int
	events int // Event-Sequence of the fake's own events
}

// OnOriginate sets what the called party of each originated endpoint
// does (default: answers).
func (s *Server) OnOriginate(f func(endpoint string) Callee) {
	s.orig.mu.Lock()
	s.orig.callee = f
	s.orig.mu.Unlock()
}

// Originated returns a copy of the calls originated so far.
func (s *Server) Originated() []Originated {
	s.orig.mu.Lock()
	defer s.orig.mu.Unlock()
	out := make([]Originated, len(s.orig.calls))
	for i, c := range s.orig.calls {
		out[i] = *c
		out[i].Plays = append([]string(nil), c.Plays...)
	}
	return out
}

// parseOriginate reads "originate {vars}ENDPOINT TARGET [DIALPLAN
// [CONTEXT]]" as mod_commands does: arguments split on spaces, the
// {vars} block part of the first.
func parseOriginate(cmd string) (*Originated, error) {
	args := strings.Fields(strings.TrimPrefix(strings.TrimSpace(cmd), "originate"))
	if len(args) < 2 {
		return nil, fmt.Errorf("usage")
	}
	o := &Originated{Command: cmd, Vars: map[string]string{}, Target: args[1], Context: "default"}
	ep := args[0]
	if strings.HasPrefix(ep, "{") {
		end := strings.Index(ep, "}")
		if end < 0 {
			return nil, fmt.Errorf("usage")
		}
		for _, kv := range strings.Split(ep[1:end], ",") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				o.Vars[k] = v
			}
		}
		ep = ep[end+1:]
	}
	o.Endpoint = ep
	if len(args) > 3 {
		o.Context = args[3]
	}
	parts := strings.Split(ep, "/")
	o.number, _, _ = strings.Cut(parts[len(parts)-1], "@")
	return o, nil
}

// originate takes "originate ..." and returns the job's answer: "+OK
// UUID" once the leg answered, "-ERR CAUSE" when it did not, as
// mod_commands' originate does after switch_ivr_originate returns. The
// leg's events are queued on the script before the answer returns: the
// api/bgapi answer only comes once the call was answered or failed.
func (s *Server) originate(cmd string) string {
	o, err := parseOriginate(cmd)
	if err != nil {
		return "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"
	}
	r := &s.orig
	r.mu.Lock()
	r.seq++
	o.UUID = o.Vars["origination_uuid"]
	if o.UUID == "" {
		o.UUID = fmt.Sprintf("f0000000-0000-4000-8000-%012d", r.seq)
	}
	if r.byID == nil {
		r.byID = map[string]*Originated{}
	}
	if prev := r.byID[o.UUID]; prev != nil && !prev.Gone {
		r.mu.Unlock()
		// switch_core_session_set_uuid refuses a uuid in use.
		return "-ERR DESTINATION_OUT_OF_ORDER\n"
	}
	callee := Callee{}
	if r.callee != nil {
		callee = r.callee(o.Endpoint)
	}
	profile := "external"
	if p := strings.Split(o.Endpoint, "/"); len(p) >= 3 && p[1] != "gateway" {
		profile = p[1]
	}
	o.name = "sofia/" + profile + "/" + o.number
	o.created = time.Now()
	o.digit = callee.Digit
	r.calls = append(r.calls, o)
	r.byID[o.UUID] = o
	var evs [][]byte
	var answer string
	leg := func(name string, st legState) { evs = append(evs, s.legEventLocked(o, name, st)) }
	leg("CHANNEL_CREATE", legState{state: "CS_INIT", num: 2, call: "DOWN", answer: "ringing"})
	leg("CHANNEL_ORIGINATE", legState{state: "CS_INIT", num: 2, call: "DOWN", answer: "ringing"})
	switch {
	case callee.Busy:
		// It rings, then answers 486 (as the callee leg of
		// testdata/esl/f05 does).
		o.Gone = true
		leg("CHANNEL_PROGRESS", legState{state: "CS_CONSUME_MEDIA", num: 7, call: "DOWN", answer: "ringing", progress: true})
		end := legState{state: "CS_CONSUME_MEDIA", num: 7, call: "RINGING", answer: "hangup", cause: "USER_BUSY", q850: 17,
			term: "486", disposition: "recv_refuse", progress: true}
		leg("CHANNEL_HANGUP", end)
		end.state, end.num, end.call = "CS_REPORTING", 11, "HANGUP"
		leg("CHANNEL_HANGUP_COMPLETE", end)
		leg("CHANNEL_DESTROY", end)
		answer = "-ERR USER_BUSY\n"
	case callee.NoAnswer:
		o.Gone = true
		ring := legState{state: "CS_CONSUME_MEDIA", num: 7, call: "DOWN", answer: "ringing", progress: true}
		leg("CHANNEL_PROGRESS", ring)
		end := legState{state: "CS_CONSUME_MEDIA", num: 7, call: "RINGING", answer: "hangup", cause: "NO_ANSWER", q850: 19,
			disposition: "send_cancel", progress: true}
		leg("CHANNEL_HANGUP", end)
		end.state, end.num, end.call = "CS_REPORTING", 11, "HANGUP"
		leg("CHANNEL_HANGUP_COMPLETE", end)
		leg("CHANNEL_DESTROY", end)
		answer = "-ERR NO_ANSWER\n"
	default:
		leg("CHANNEL_PROGRESS", legState{state: "CS_CONSUME_MEDIA", num: 7, call: "DOWN", answer: "ringing", progress: true})
		o.answer = time.Now()
		leg("CHANNEL_ANSWER", legState{state: "CS_CONSUME_MEDIA", num: 7, call: "RINGING", answer: "answered", progress: true})
		if app, ok := strings.CutPrefix(o.Target, "&"); ok {
			// The answered leg runs the application it was given.
			o.app, o.appData, _ = strings.Cut(strings.TrimSuffix(app, ")"), "(")
			leg("CHANNEL_EXECUTE", legState{state: "CS_EXECUTE", num: 4, call: "ACTIVE", answer: "answered", progress: true})
		}
		answer = "+OK " + o.UUID + "\n"
	}
	r.mu.Unlock()
	s.Play(evs...)
	return answer
}

// legState is what an originated leg's event says of its state.
type legState struct {
	state       string // Channel-State
	num         int    // Channel-State-Number
	call        string // Channel-Call-State
	answer      string // Answer-State
	progress    bool   // it rang
	cause       string // Hangup-Cause, once it hung up
	q850        int
	term        string // sip_term_status
	disposition string // sip_hangup_disposition
}

// legEventLocked builds one event of an originated leg with the headers
// FreeSWITCH 1.10 sends for an outbound sofia leg (as the carrier leg of
// a recorded outbound call carries them), less the Other-Leg-* block: a
// leg originated by the API has no originator. Caller id and destination
// come from originate's own caller profile (origination_caller_id_*, the
// dialled number, context "default").
func (s *Server) legEventLocked(o *Originated, name string, st legState) []byte {
	r := &s.orig
	r.events++
	now := time.Now()
	us := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return strconv.FormatInt(t.UnixMicro(), 10)
	}
	cid := o.Vars["origination_caller_id_number"]
	cidName := o.Vars["origination_caller_id_name"]
	if cidName == "" {
		cidName = cid
	}
	progress := time.Time{}
	if st.progress {
		progress = o.created.Add(time.Millisecond)
	}
	e := map[string]string{
		"Event-Name":                            name,
		"Core-UUID":                             "3fd39908-fb40-463a-8df7-baf69759efd9",
		"FreeSWITCH-Hostname":                   "esltest",
		"FreeSWITCH-Switchname":                 "esltest",
		"FreeSWITCH-IPv4":                       "127.0.0.1",
		"Event-Date-Local":                      now.Format(time.DateTime),
		"Event-Date-GMT":                        now.UTC().Format(time.RFC1123),
		"Event-Date-Timestamp":                  us(now),
		"Event-Calling-File":                    "switch_channel.c",
		"Event-Calling-Function":                "switch_channel_perform_" + strings.ToLower(strings.TrimPrefix(name, "CHANNEL_")),
		"Event-Calling-Line-Number":             "0",
		"Event-Sequence":                        strconv.Itoa(1000000 + r.events),
		"Channel-State":                         st.state,
		"Channel-Call-State":                    st.call,
		"Channel-State-Number":                  strconv.Itoa(st.num),
		"Channel-Name":                          o.name,
		"Unique-ID":                             o.UUID,
		"Call-Direction":                        "outbound",
		"Presence-Call-Direction":               "outbound",
		"Channel-HIT-Dialplan":                  "false",
		"Channel-Call-UUID":                     o.UUID,
		"Answer-State":                          st.answer,
		"Caller-Direction":                      "outbound",
		"Caller-Logical-Direction":              "outbound",
		"Caller-Dialplan":                       "XML",
		"Caller-Caller-ID-Name":                 cidName,
		"Caller-Caller-ID-Number":               cid,
		"Caller-Orig-Caller-ID-Name":            cidName,
		"Caller-Orig-Caller-ID-Number":          cid,
		"Caller-Callee-ID-Name":                 "Outbound Call",
		"Caller-Callee-ID-Number":               o.number,
		"Caller-Destination-Number":             o.number,
		"Caller-Unique-ID":                      o.UUID,
		"Caller-Source":                         "src/switch_ivr_originate.c",
		"Caller-Context":                        "default",
		"Caller-Channel-Name":                   o.name,
		"Caller-Profile-Index":                  "1",
		"Caller-Profile-Created-Time":           us(o.created),
		"Caller-Channel-Created-Time":           us(o.created),
		"Caller-Channel-Answered-Time":          us(o.answer),
		"Caller-Channel-Progress-Time":          us(progress),
		"Caller-Channel-Progress-Media-Time":    "0",
		"Caller-Channel-Hangup-Time":            "0",
		"Caller-Channel-Transfer-Time":          "0",
		"Caller-Channel-Resurrect-Time":         "0",
		"Caller-Channel-Bridged-Time":           "0",
		"Caller-Channel-Last-Hold":              "0",
		"Caller-Channel-Hold-Accum":             "0",
		"Caller-Screen-Bit":                     "true",
		"Caller-Privacy-Hide-Name":              "false",
		"Caller-Privacy-Hide-Number":            "false",
		"variable_direction":                    "outbound",
		"variable_is_outbound":                  "true",
		"variable_uuid":                         o.UUID,
		"variable_channel_name":                 o.name,
		"variable_sip_profile_name":             "external",
		"variable_sofia_profile_name":           "external",
		"variable_originate_endpoint":           "sofia",
		"variable_origination_uuid":             o.UUID,
		"variable_origination_caller_id_number": cid,
		"variable_originate_timeout":            o.Vars["originate_timeout"],
		"variable_ignore_early_media":           o.Vars["ignore_early_media"],
		"variable_sip_req_user":                 o.number,
		"variable_sip_to_user":                  o.number,
		"variable_sip_from_user":                cid,
	}
	if st.cause != "" {
		// As the recorded callee legs (testdata/esl f01, f02, f05) show:
		// CHANNEL_HANGUP carries the cause, and the SIP disposition only
		// when a refusal was received; the q850 code, the disposition
		// and the end come with HANGUP_COMPLETE.
		e["Hangup-Cause"] = st.cause
		e["variable_hangup_cause"] = st.cause
		e["Caller-Channel-Hangup-Time"] = us(now)
		if st.term != "" {
			e["variable_sip_term_status"] = st.term
			e["variable_proto_specific_hangup_cause"] = "sip:" + st.term
			e["variable_sip_hangup_disposition"] = st.disposition
		}
		if name != "CHANNEL_HANGUP" {
			e["variable_hangup_cause_q850"] = strconv.Itoa(st.q850)
			e["variable_sip_hangup_disposition"] = st.disposition
			e["variable_end_uepoch"] = us(now)
			e["variable_start_uepoch"] = us(o.created)
			e["variable_answer_uepoch"] = us(o.answer)
		}
	}
	if name == "CHANNEL_EXECUTE" {
		e["Application"] = o.app
		e["Application-Data"] = o.appData
	}
	if name == "DTMF" {
		e["DTMF-Digit"] = o.digit
		e["DTMF-Duration"] = "2000"
		e["DTMF-Source"] = "RTP"
	}
	for k, v := range e {
		if v == "" {
			delete(e, k)
		}
	}
	b, _ := json.Marshal(e)
	return b
}

// broadcast answers "uuid_broadcast UUID PATH [aleg|bleg|both]" as
// mod_commands does, and plays the callee's digit at the first playback.
func (s *Server) broadcast(args []string) string {
	if len(args) < 2 {
		return "-USAGE: <uuid> <path> [aleg|bleg|holdb|both]\n"
	}
	r := &s.orig
	r.mu.Lock()
	o := r.byID[args[0]]
	if o == nil || o.Gone {
		r.mu.Unlock()
		return "-ERR invalid uuid\n"
	}
	o.Plays = append(o.Plays, args[1])
	var evs [][]byte
	if len(o.Plays) == 1 && o.digit != "" {
		up := legState{state: "CS_EXECUTE", num: 4, call: "ACTIVE", answer: "answered", progress: true}
		evs = append(evs, s.legEventLocked(o, "DTMF", up))
	}
	r.mu.Unlock()
	s.Play(evs...)
	return "+OK Message sent\n"
}

// kill answers "uuid_kill UUID [CAUSE]" as mod_commands does: the leg
// hangs up with the cause named, NORMAL_CLEARING by default (FreeSWITCH
// sending the BYE: send_bye), or "-ERR No such channel!".
func (s *Server) kill(args []string) string {
	if len(args) < 1 {
		return "-USAGE: <uuid> [cause]\n"
	}
	cause := "NORMAL_CLEARING"
	if len(args) > 1 {
		cause = args[1]
	}
	r := &s.orig
	r.mu.Lock()
	o := r.byID[args[0]]
	if o == nil || o.Gone {
		r.mu.Unlock()
		return "-ERR No such channel!\n"
	}
	o.Killed = true
	evs := s.hangupLocked(o, cause, "send_bye")
	r.mu.Unlock()
	s.Play(evs...)
	return "+OK\n"
}

// HangUpRemote ends an answered originated call from the far end, as a
// BYE does: NORMAL_CLEARING, recv_bye. It reports whether the leg was up.
func (s *Server) HangUpRemote(uuid string) bool {
	r := &s.orig
	r.mu.Lock()
	o := r.byID[uuid]
	if o == nil || o.Gone {
		r.mu.Unlock()
		return false
	}
	evs := s.hangupLocked(o, "NORMAL_CLEARING", "recv_bye")
	r.mu.Unlock()
	s.Play(evs...)
	return true
}

// q850 are the Q.850 codes of the causes a hang-up names here.
var q850 = map[string]int{"NORMAL_CLEARING": 16, "USER_BUSY": 17, "NO_ANSWER": 19, "CALL_REJECTED": 21,
	"ORIGINATOR_CANCEL": 487, "MANAGER_REQUEST": 503}

// hangupLocked ends an answered leg.
func (s *Server) hangupLocked(o *Originated, cause, disposition string) [][]byte {
	o.Gone = true
	code, ok := q850[cause]
	if !ok {
		cause, code = "NORMAL_CLEARING", 16
	}
	st := legState{state: "CS_EXECUTE", num: 4, call: "ACTIVE", answer: "hangup", progress: true,
		cause: cause, q850: code, disposition: disposition}
	out := [][]byte{s.legEventLocked(o, "CHANNEL_HANGUP", st)}
	st.state, st.num, st.call = "CS_REPORTING", 11, "HANGUP"
	out = append(out, s.legEventLocked(o, "CHANNEL_HANGUP_COMPLETE", st), s.legEventLocked(o, "CHANNEL_DESTROY", st))
	return out
}
