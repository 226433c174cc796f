package cdr

import "time"

// Kind says what happened to a channel. The set is small on purpose: it is
// what both Asterisk (ARI) and FreeSWITCH (ESL) can say about a call leg, so
// that one tracker serves every source.
type Kind uint8

const (
	KindCreated       Kind = iota + 1 // a channel (call leg) appeared
	KindState                         // its state changed (Channel.State)
	KindDialplan                      // it started a dialplan application (Channel.App, Channel.AppData)
	KindVar                           // a channel variable was set (Var, Value)
	KindCallerID                      // its caller id changed (Channel.CallerNumber)
	KindDial                          // dial progress: Channel is the dialed leg, Other the dialing one
	KindDTMF                          // a digit was received (Digit)
	KindBridgeEnter                   // it entered a bridge (Bridge)
	KindBridgeLeave                   // it left a bridge (Bridge)
	KindHangupRequest                 // someone asked for it to hang up (Cause, TechCause, Soft)
	KindFax                           // fax was detected or started on it (Detail says how)
	KindMenu                          // it entered an IVR menu the PBX names (Detail is the menu)
	KindQueue                         // it entered a queue the PBX names (Detail is the queue)
	KindDestroyed                     // it is gone (Cause, CauseText, TechCause)
	KindGone                          // it vanished while the source was not watching (reconciled)
)

var kindNames = [...]string{"", "created", "state", "dialplan", "var", "callerid", "dial", "dtmf",
	"bridge_enter", "bridge_leave", "hangup_request", "fax", "menu", "queue", "destroyed", "gone"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Channel is a snapshot of one call leg as the PBX described it in an event.
type Channel struct {
	ID       string // the leg's unique id (Asterisk uniqueid, FreeSWITCH Unique-ID)
	Name     string // technology name, e.g. PJSIP/trunk-00000001
	LinkedID string // the call's id when the PBX states it; "" when unknown
	State    string // Down, Ring, Ringing, Up, Busy

	CallerNumber    string
	CallerName      string
	ConnectedNumber string
	DialedNumber    string // the number the leg was dialed as, when the PBX says (DNID, sip_req_user)
	RDNIS           string

	Context string
	Exten   string
	App     string // the dialplan application now running
	AppData string

	Created time.Time
	Vars    map[string]string // channel variables delivered with the snapshot
}

// Input is one PBX event, reduced to what the tracker needs. Sources
// (ari, and the FreeSWITCH one) build it; the tracker never sees PBX structs.
type Input struct {
	Kind    Kind
	Time    time.Time // when the PBX says it happened
	Server  string    // the PBX's entity id; keeps call ids unique across servers
	Channel Channel

	Var, Value string // KindVar

	Other      *Channel // KindDial: the dialing leg, nil for an originate
	DialStatus string   // KindDial: "", RINGING, ANSWER, NOANSWER, BUSY, CANCEL, CONGESTION, CHANUNAVAIL
	DialString string   // KindDial
	Forward    string   // KindDial: where a callee forwarded the call

	Digit  string // KindDTMF
	Bridge string // KindBridgeEnter, KindBridgeLeave
	Detail string // KindFax, KindMenu, KindQueue

	Cause     int    // Q.850 cause code (KindHangupRequest, KindDestroyed); 0 when absent
	CauseName string // Q.850 cause name when the PBX states it (FreeSWITCH does)
	CauseText string // the PBX's words for the cause ("Normal Clearing"), for logs
	TechCause int    // the SIP status behind the cause, 0 when absent
	Soft      bool   // KindHangupRequest: a soft request (the PBX tearing down the other leg)

	// Disposition is the SIP hangup disposition when the PBX states it
	// (recv_bye, send_refuse, ...); the tracker infers it otherwise.
	Disposition string
}
