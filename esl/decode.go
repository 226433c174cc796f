package esl

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kanca/kanca/cdr"
)

// ErrMalformed is wrapped by every Decode error, so callers can tell a bad
// event from a transport failure.
var ErrMalformed = errors.New("malformed FreeSWITCH event")

// Fields is one event's headers with lower-cased names, so that JSON events
// ("Unique-ID") and plain ones parsed by net/textproto ("Unique-Id") read
// the same.
type Fields map[string]string

// Get returns the header name (any case).
func (f Fields) Get(name string) string { return f[strings.ToLower(name)] }

// ParseJSON reads one event in the "event json" format. FreeSWITCH sends
// every value as a string; numbers and other scalars are accepted anyway.
func ParseJSON(event []byte) (Fields, error) {
	var raw map[string]any
	if err := json.Unmarshal(event, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	f := make(Fields, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			f[strings.ToLower(k)] = v
		case float64:
			f[strings.ToLower(k)] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			f[strings.ToLower(k)] = strconv.FormatBool(v)
		}
	}
	return f, nil
}

// Decode turns one event in the "event json" format into at most one
// tracker input. ok is false for events the tracker does not need (state
// machine steps, codecs, heartbeats, playback, other custom events); that
// is not an error. An event that is not a JSON object, has no Event-Name,
// or lacks what its mapped type needs returns an error wrapping
// ErrMalformed.
func Decode(event []byte) (cdr.Input, bool, error) {
	f, err := ParseJSON(event)
	if err != nil {
		return cdr.Input{}, false, err
	}
	return DecodeFields(f)
}

// Sequence returns the event's Event-Sequence; ok is false when it has
// none.
func (f Fields) Sequence() (uint64, bool) {
	n, err := strconv.ParseUint(f["event-sequence"], 10, 64)
	return n, err == nil
}

// DecodeFields is Decode for an event whose headers are already read.
//
// How FreeSWITCH events become tracker inputs:
//   - CHANNEL_CREATE: KindCreated. A leg that FreeSWITCH originated for
//     another one (Other-Type "originator", or a mod_callcenter agent leg
//     carrying variable_cc_member_session_uuid) is created Down with
//     LinkedID = that A-leg, as is a loopback's B leg (LinkedID = its A
//     leg, from other_loopback_leg_uuid); every other leg starts its own
//     call.
//   - CHANNEL_ORIGINATE, CHANNEL_PROGRESS(_MEDIA) and CHANNEL_HANGUP of
//     such a B-leg: KindDial with Other = the A-leg and a dial status
//     ("", RINGING, or the status its hangup cause means: NOANSWER, BUSY,
//     CANCEL, CONGESTION, CHANUNAVAIL), as Asterisk's Dial events say.
//   - CHANNEL_PROGRESS(_MEDIA) of other legs: KindState Ringing;
//     CHANNEL_ANSWER: KindState Up.
//   - CHANNEL_EXECUTE: KindDialplan (App, AppData), except ivr: KindMenu
//     with the menu name.
//   - CHANNEL_HANGUP of other legs: KindHangupRequest; it is soft unless
//     the far end ended the dialog (sip_hangup_disposition recv_*, or a
//     sip_term_status FreeSWITCH answered the BYE or CANCEL with).
//   - CHANNEL_HANGUP_COMPLETE and CHANNEL_DESTROY: KindDestroyed with
//     CauseName = Hangup-Cause and Disposition = sip_hangup_disposition
//     (the tracker forgets the leg at the first, the second is a no-op).
//   - DTMF: KindDTMF; CHANNEL_BRIDGE/UNBRIDGE: KindBridgeEnter/Leave.
//   - CUSTOM menu::enter: KindMenu (Menu-Name); callcenter::info
//     member-queue-start: KindQueue (CC-Queue without its @domain);
//     spandsp::rxfax*: KindFax. Parking is read from the valet_park
//     application (CHANNEL_EXECUTE) of the parked and the retrieving leg,
//     and the space a lot chose from the parked leg's
//     variable_valet_lot_extension (Channel.Parked), on every event after.
//   - A B-leg's KindDial carries DialString = its Caller-Destination-Number
//     (the member, agent or number dialled); CHANNEL_BRIDGE carries Other =
//     the leg bridged to.
//   - KindDestroyed is timed by variable_end_uepoch, the leg's own end, and
//     CHANNEL_ANSWER by Caller-Channel-Answered-Time: the event itself
//     may leave late (a slow CDR module delays HANGUP_COMPLETE by seconds).
func DecodeFields(f Fields) (cdr.Input, bool, error) {
	name := f["event-name"]
	if name == "" {
		return cdr.Input{}, false, fmt.Errorf("%w: no Event-Name", ErrMalformed)
	}
	kind, ok := f.kind(name)
	if !ok {
		return cdr.Input{}, false, nil
	}
	in, err := f.input(name, kind)
	if err != nil {
		return cdr.Input{}, false, fmt.Errorf("%w: %s: %v", ErrMalformed, name, err)
	}
	return in, true, nil
}

// aLeg is the leg this one was originated for, "" for a leg of its own.
func (f Fields) aLeg() string {
	id := f["unique-id"]
	if f["other-type"] == "originator" {
		if o := f["other-leg-unique-id"]; o != "" && o != id {
			return o
		}
	}
	if m := f["variable_cc_member_session_uuid"]; m != "" && m != id {
		return m
	}
	// mod_loopback's B leg is a new session, with no originator: it
	// names its A leg, which the caller bridged to, in
	// other_loopback_leg_uuid (set before the B leg's thread starts).
	if name := f["channel-name"]; strings.HasPrefix(name, "loopback/") && strings.HasSuffix(name, "-b") {
		if a := f["variable_other_loopback_leg_uuid"]; a != "" && a != id {
			return a
		}
	}
	return ""
}

func (f Fields) kind(name string) (cdr.Kind, bool) {
	b := f.aLeg() != ""
	switch name {
	case "CHANNEL_CREATE":
		return cdr.KindCreated, true
	case "CHANNEL_ORIGINATE":
		return cdr.KindDial, b
	case "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA":
		if b {
			return cdr.KindDial, true
		}
		return cdr.KindState, true
	case "CHANNEL_ANSWER":
		return cdr.KindState, true
	case "CHANNEL_EXECUTE":
		if strings.EqualFold(f["application"], "ivr") {
			return cdr.KindMenu, true
		}
		return cdr.KindDialplan, true
	case "DTMF":
		return cdr.KindDTMF, true
	case "CHANNEL_BRIDGE":
		return cdr.KindBridgeEnter, true
	case "CHANNEL_UNBRIDGE":
		return cdr.KindBridgeLeave, true
	case "CHANNEL_HANGUP":
		if b {
			return cdr.KindDial, true
		}
		return cdr.KindHangupRequest, true
	case "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY":
		return cdr.KindDestroyed, true
	case "RECORD_START":
		return cdr.KindRecord, true
	case "CUSTOM":
		if f["unique-id"] == "" {
			return 0, false
		}
		sub := f["event-subclass"]
		switch {
		case sub == "menu::enter":
			return cdr.KindMenu, true
		case sub == "callcenter::info" && f["cc-action"] == "member-queue-start":
			return cdr.KindQueue, true
		case strings.HasPrefix(sub, "spandsp::rxfax"):
			return cdr.KindFax, true
		}
	}
	return 0, false
}

func (f Fields) input(name string, kind cdr.Kind) (cdr.Input, error) {
	in := cdr.Input{Kind: kind, Server: f.server()}
	us, err := strconv.ParseInt(f["event-date-timestamp"], 10, 64)
	if err != nil || us <= 0 {
		return in, fmt.Errorf("Event-Date-Timestamp %q", f["event-date-timestamp"])
	}
	in.Time = time.UnixMicro(us)
	if f["unique-id"] == "" {
		return in, errors.New("no Unique-ID")
	}
	in.Channel = f.Channel()
	a := f.aLeg()

	switch kind {
	case cdr.KindCreated:
		if a != "" {
			in.Channel.State = "Down"
		}
	case cdr.KindState:
		if name == "CHANNEL_ANSWER" {
			in.Channel.State = "Up"
			// The leg's own answer moment, as its CDR keeps it.
			if us, err := strconv.ParseInt(f["caller-channel-answered-time"], 10, 64); err == nil && us > 0 {
				in.Time = time.UnixMicro(us)
			}
		} else {
			in.Channel.State = "Ringing"
		}
	case cdr.KindDial:
		in.Other = &cdr.Channel{ID: a, LinkedID: a}
		in.DialString = f["caller-destination-number"] // what the originate dialled
		switch name {
		case "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA":
			in.DialStatus = "RINGING"
		case "CHANNEL_HANGUP":
			if f["caller-channel-answered-time"] == "" || f["caller-channel-answered-time"] == "0" {
				in.DialStatus = dialStatus(f["hangup-cause"])
			}
		}
	case cdr.KindDialplan:
		in.Channel.App, in.Channel.AppData = f["application"], f["application-data"]
		// Where in the dialplan the leg runs it: after a gap, a move the
		// list shows came before an application of a later profile.
		in.Channel.Routed = usec(f["caller-profile-created-time"])
	case cdr.KindMenu:
		if name == "CHANNEL_EXECUTE" {
			in.Detail, _, _ = strings.Cut(strings.TrimSpace(f["application-data"]), " ")
		} else {
			in.Detail = f["menu-name"]
		}
		if in.Detail == "" {
			return in, errors.New("no menu name")
		}
	case cdr.KindQueue:
		in.Detail, _, _ = strings.Cut(f["cc-queue"], "@")
		if in.Detail == "" {
			return in, errors.New("no CC-Queue")
		}
	case cdr.KindFax:
		in.Detail = strings.TrimPrefix(f["event-subclass"], "spandsp::")
	case cdr.KindRecord:
		in.Channel.Recording = f["record-file-path"]
		// What records: voicemail taking a message records too.
		in.Channel.App, in.Channel.AppData = f["variable_current_application"], f["variable_current_application_data"]
	case cdr.KindDTMF:
		in.Digit = f["dtmf-digit"]
	case cdr.KindBridgeEnter, cdr.KindBridgeLeave:
		in.Bridge = f["bridge-a-unique-id"]
		if in.Bridge == "" {
			in.Bridge = f["unique-id"]
		}
		// The leg it is bridged to: after uuid_bridge (intercept,
		// att_xfer, valet parking) it may be a leg of another call.
		other := f["bridge-b-unique-id"]
		if other == f["unique-id"] {
			other = f["bridge-a-unique-id"]
		}
		if other != "" && other != f["unique-id"] {
			in.Other = &cdr.Channel{ID: other}
		}
	case cdr.KindHangupRequest:
		f.cause(&in)
		in.Soft = !f.farEndHungUp()
	case cdr.KindDestroyed:
		f.cause(&in)
		in.Disposition = f["variable_sip_hangup_disposition"]
		// The leg's own end: the event itself may be seconds late when
		// a CDR module is slow.
		if us, err := strconv.ParseInt(f["variable_end_uepoch"], 10, 64); err == nil && us > 0 {
			in.Time = time.UnixMicro(us)
		}
	}
	return in, nil
}

// server names the FreeSWITCH instance: its switch name is stable across
// restarts, as Asterisk's entity id is.
func (f Fields) server() string {
	for _, k := range []string{"freeswitch-switchname", "freeswitch-hostname", "core-uuid"} {
		if v := f[k]; v != "" {
			return v
		}
	}
	return ""
}

// Channel reads the leg the event is about.
func (f Fields) Channel() cdr.Channel {
	id := f["unique-id"]
	ch := cdr.Channel{
		ID:              id,
		Name:            f["channel-name"],
		LinkedID:        id,
		CallerNumber:    f["caller-caller-id-number"],
		CallerName:      f["caller-caller-id-name"],
		ConnectedNumber: f["caller-callee-id-number"],
		DialedNumber:    f["variable_sip_req_user"],
		RDNIS:           f["caller-rdnis"],
		Context:         f["caller-context"],
		Exten:           f["caller-destination-number"],
		Parked:          f["variable_valet_lot_extension"],
	}
	if a := f.aLeg(); a != "" {
		ch.LinkedID = a
	}
	// What the PBX presents outside: an outbound route sets it before the
	// bridge, as Asterisk's dialplan sets CALLERID(num).
	if n := f["variable_effective_caller_id_number"]; n != "" {
		ch.CallerNumber = n
	}
	switch f["answer-state"] {
	case "answered":
		ch.State = "Up"
	case "early":
		ch.State = "Ringing"
	case "ringing":
		ch.State = "Ring"
		if ch.LinkedID != id {
			ch.State = "Ringing"
		}
	case "hangup":
		// Hanging up, it is still the leg it was: an answered one is up
		// (as Asterisk's snapshots say), which tells an answer the gap
		// hid when this is the first event kanca hears of it since.
		if us, err := strconv.ParseInt(f["caller-channel-answered-time"], 10, 64); err == nil && us > 0 {
			ch.State = "Up"
		}
	}
	if us, err := strconv.ParseInt(f["caller-channel-created-time"], 10, 64); err == nil && us > 0 {
		ch.Created = time.UnixMicro(us)
	}
	return ch
}

func (f Fields) cause(in *cdr.Input) {
	in.CauseName = f["hangup-cause"]
	if in.CauseName == "" {
		in.CauseName = f["variable_hangup_cause"]
	}
	if n, err := strconv.Atoi(f["variable_hangup_cause_q850"]); err == nil {
		in.Cause = n
	} else {
		in.Cause = causeCode[in.CauseName]
	}
	in.CauseText = in.CauseName
	in.TechCause, _ = strconv.Atoi(f["variable_sip_term_status"])
}

// farEndHungUp says whether the leg's own SIP peer ended the dialog.
func (f Fields) farEndHungUp() bool {
	if d := f["variable_sip_hangup_disposition"]; d != "" {
		return strings.HasPrefix(d, "recv_")
	}
	return f["variable_sip_term_status"] != ""
}

// DialStatus is what the source reports as the Dial status of a callee
// leg that ended unanswered with cause (a FreeSWITCH cause name), for
// whoever else tells FreeSWITCH's calls (its mod_json_cdr files).
func DialStatus(cause string) string { return dialStatus(cause) }

// dialStatus is what Asterisk's DIALSTATUS says for a callee that ended
// without answering with cause.
func dialStatus(cause string) string {
	switch cause {
	case "NO_ANSWER", "NO_USER_RESPONSE", "ALLOTTED_TIMEOUT", "RECOVERY_ON_TIMER_EXPIRE":
		return "NOANSWER"
	case "USER_BUSY", "CALL_REJECTED":
		return "BUSY"
	case "NORMAL_CIRCUIT_CONGESTION", "SWITCH_CONGESTION":
		return "CONGESTION"
	case "USER_NOT_REGISTERED", "SUBSCRIBER_ABSENT", "UNALLOCATED_NUMBER", "NO_ROUTE_DESTINATION",
		"DESTINATION_OUT_OF_ORDER", "NETWORK_OUT_OF_ORDER", "GATEWAY_DOWN", "INVALID_GATEWAY":
		return "CHANUNAVAIL"
	case "":
		return ""
	}
	return "CANCEL"
}

// causeCode maps FreeSWITCH's cause names back to Q.850 codes.
var causeCode = func() map[string]int {
	m := map[string]int{}
	for i := 1; i < 128; i++ {
		if n := cdr.CauseName(i); !strings.HasPrefix(n, "CAUSE_") {
			if _, dup := m[n]; !dup {
				m[n] = i
			}
		}
	}
	return m
}()
