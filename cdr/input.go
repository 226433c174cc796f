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
	// Kinds added later keep the numbers above stable: the journal stores them.
	KindTransfer  // the PBX moved the call: Channel is the leg moved (the transferee), Detail "blind" or "attended", Target where to, Other the leg it now talks to when the PBX names it
	KindPark      // the leg was parked (Target is the space, or the lot when the PBX names no space)
	KindOriginate // kanca is about to place a call on request on channel Channel.ID (Origin says for whom); sent before the PBX is asked
	KindRecord    // the PBX began recording the leg, whatever started it (Channel.Recording is the file when the PBX names it)
	KindPlayed    // a sound kanca asked the PBX to play on the leg ended: the dialer's, for a call placed on request; the tracker reads nothing of it
)

var kindNames = [...]string{"", "created", "state", "dialplan", "var", "callerid", "dial", "dtmf",
	"bridge_enter", "bridge_leave", "hangup_request", "fax", "menu", "queue", "destroyed", "gone", "transfer", "park", "originate", "record", "played"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Channel is a snapshot of one call leg as the PBX described it in an event.
type Channel struct {
	ID       string `json:",omitzero"` // the leg's unique id (Asterisk uniqueid, FreeSWITCH Unique-ID)
	Name     string `json:",omitzero"` // technology name, e.g. PJSIP/trunk-00000001
	LinkedID string `json:",omitzero"` // the call's id when the PBX states it; "" when unknown
	State    string `json:",omitzero"` // Down, Ring, Ringing, Up, Busy

	CallerNumber    string `json:",omitzero"`
	CallerName      string `json:",omitzero"`
	ConnectedNumber string `json:",omitzero"`
	DialedNumber    string `json:",omitzero"` // the number the leg was dialed as, when the PBX says (DNID, sip_req_user)
	RDNIS           string `json:",omitzero"`
	// Presented is the number the leg presents outside when the PBX keeps
	// it apart from its own (FreeSWITCH's effective_caller_id_number), on
	// an adopted leg: its own number says whose call it is, this one what
	// an outbound call announces.
	Presented string `json:",omitzero"`

	Context string `json:",omitzero"`
	Exten   string `json:",omitzero"`
	App     string `json:",omitzero"` // the dialplan application now running
	AppData string `json:",omitzero"`

	// Parked is the parking space the leg waits in, or waited in, when
	// the PBX says so on its events (FreeSWITCH's valet_lot_extension): a
	// lot that chose the space itself is named by it.
	Parked string `json:",omitzero"`

	Created time.Time `json:",omitzero"`
	// Answered is when the leg answered, on a leg a list after a gap
	// shows up, when the PBX says (FreeSWITCH's uuid_dump): the answer
	// the gap hid is placed then, not where the list is.
	Answered time.Time `json:",omitzero"`
	// Routed is when the leg began where it is now in the dialplan, on a
	// leg a list after a gap shows and on the application it starts, when
	// the PBX says (FreeSWITCH's caller profile, which a transfer or a
	// bridge to a parked or queued call renews): what the leg runs now
	// came after what ended before then.
	Routed time.Time `json:",omitzero"`
	// Queue is the queue the leg entered as a caller waiting for an
	// agent, and Queued when, on a leg a list after a gap shows, when the
	// PBX keeps it (FreeSWITCH's cc_queue and cc_queue_joined_epoch, whole
	// seconds, on the member's session): a caller the queue handed to an
	// agent in the gap runs no queue application any more, yet the queue
	// is where the call went.
	Queue  string    `json:",omitzero"`
	Queued time.Time `json:",omitzero"`
	// DialedBy is the leg this one was originated for, on a leg a list
	// after a gap shows, when the PBX's session names it (FreeSWITCH's
	// originator): a leg one of the call's callees originated (an
	// attended transfer's consultation) is no step of the call until the
	// transfer joins the caller to it, as a live dial says.
	DialedBy string `json:",omitzero"`
	// Recording is the file the PBX records the leg to, on a leg a list
	// after a gap shows, when the PBX says (FreeSWITCH's media bugs,
	// uuid_buglist): a recording begun in the gap runs no application
	// any more, and the call is recorded all the same.
	Recording string            `json:",omitzero"`
	Vars      map[string]string `json:",omitzero"` // channel variables delivered with the snapshot
}

// WithVar sets a channel variable on c, copying Vars first: a snapshot's
// map may be shared with the input it came from.
func (c *Channel) WithVar(name, value string) {
	vars := make(map[string]string, len(c.Vars)+1)
	for k, v := range c.Vars {
		vars[k] = v
	}
	vars[name] = value
	c.Vars = vars
}

// Input is one PBX event, reduced to what the tracker needs. Sources
// (ari, and the FreeSWITCH one) build it; the tracker never sees PBX structs.
// Its JSON form is what kanca's journal keeps across restarts: rename a
// field only with a migration.
type Input struct {
	Kind    Kind      `json:",omitzero"`
	Time    time.Time `json:",omitzero"` // when the PBX says it happened
	Server  string    `json:",omitzero"` // the PBX's entity id; keeps call ids unique across servers
	Channel Channel   `json:",omitzero"`

	Var, Value string `json:",omitzero"` // KindVar

	Other      *Channel `json:",omitzero"` // KindDial: the dialing leg, nil for an originate; KindBridgeEnter: the leg bridged to, when the PBX says; KindTransfer: the transfer target
	DialStatus string   `json:",omitzero"` // KindDial: "", RINGING, ANSWER, NOANSWER, BUSY, CANCEL, CONGESTION, CHANUNAVAIL
	DialString string   `json:",omitzero"` // KindDial
	Forward    string   `json:",omitzero"` // KindDial: where a callee forwarded the call (a 302, call forwarding)

	// Target is the number a transfer sent the call to, or the parking
	// space (KindTransfer, KindPark).
	Target string `json:",omitzero"`

	Digit  string `json:",omitzero"` // KindDTMF
	Bridge string `json:",omitzero"` // KindBridgeEnter, KindBridgeLeave
	Detail string `json:",omitzero"` // KindFax, KindMenu, KindQueue

	Cause     int    `json:",omitzero"` // Q.850 cause code (KindHangupRequest, KindDestroyed); 0 when absent
	CauseName string `json:",omitzero"` // Q.850 cause name when the PBX states it (FreeSWITCH does)
	CauseText string `json:",omitzero"` // the PBX's words for the cause ("Normal Clearing"), for logs
	TechCause int    `json:",omitzero"` // the SIP status behind the cause, 0 when absent
	Soft      bool   `json:",omitzero"` // KindHangupRequest: a soft request (the PBX tearing down the other leg)

	// Disposition is the SIP hangup disposition when the PBX states it
	// (recv_bye, send_refuse, ...); the tracker infers it otherwise.
	Disposition string `json:",omitzero"`

	Origin *Origin `json:",omitzero"` // KindOriginate
	// Adopted marks an input a channel list made after a gap, not an
	// event: a KindCreated for a channel found mid-call (its snapshot is
	// where the channel is now: Exten may be an extension the call was
	// sent to, App what it runs; DialedNumber and Vars carry the number
	// the call arrived on when the PBX could say, LinkedID the call it
	// belongs to), or a KindState for a change the gap hid (it happened
	// by Time, not at it).
	Adopted bool `json:",omitzero"`
	// Resumed marks a channel's first event after a gap in the stream
	// (kanca stopped, or its connection dropped) when the channel lived
	// through it: what happened to it in between went unheard (a hangup
	// request, say, whose end then comes live).
	Resumed bool `json:",omitzero"`
	// Books marks an input told by the PBX's own records (CEL, CDR files)
	// after a gap, not by its live stream: the call's record says it was
	// recovered.
	Books bool `json:",omitzero"`
	// Estimated names, on a Books input, the fields of the call's record
	// the books could not state and the input states as well as they let
	// (by their webhook names, as Record.Estimated): the record names them.
	Estimated []string `json:",omitzero"`
}
