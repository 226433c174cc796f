package cdr

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// EventType is a Bulutfon webhook event name, in the spelling kanca emits.
type EventType string

const (
	CallInit          EventType = "call_init"
	CallInitExtension EventType = "call_init_extension"
	CallInitGroup     EventType = "call_init_group"
	CallInitMenu      EventType = "call_init_menu"
	FaxInit           EventType = "fax_init"
	CallHangup        EventType = "call_hangup"
	MissingCall       EventType = "missing_call"
)

// EventTypes lists every event kanca emits, in the spec's order.
var EventTypes = []EventType{CallInit, CallInitExtension, CallInitGroup, CallInitMenu, FaxInit, CallHangup, MissingCall}

// aliases are the other spellings the Bulutfon pages use for the same event.
var aliases = map[string]EventType{
	"call_init_manu":          CallInitMenu,
	"incoming_call_extension": CallInitExtension,
	"incoming_call_group":     CallInitGroup,
}

// misspelt are spellings accepted in a hook's event set but never sent:
// the spec lists the menu event once as call_init_manu, a typo of its own
// example's call_init_menu.
var misspelt = map[string]EventType{"call_init_manu": CallInitMenu}

// SendName returns the event_type to send to a hook that asked for the
// event by name: the name itself, as the later revision's spellings are
// sent as asked, except for a misspelling.
func SendName(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if t, ok := misspelt[name]; ok {
		return string(t)
	}
	return name
}

// ParseEventType accepts every spelling of an event name. It returns the
// canonical type; the caller keeps the spelling it was given if it must
// answer in kind.
func ParseEventType(s string) (EventType, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, t := range EventTypes {
		if string(t) == s {
			return t, nil
		}
	}
	if t, ok := aliases[s]; ok {
		return t, nil
	}
	names := make([]string, 0, len(EventTypes)+len(aliases))
	for _, t := range EventTypes {
		names = append(names, string(t))
	}
	for a := range aliases {
		names = append(names, a)
	}
	slices.Sort(names)
	return "", fmt.Errorf("unknown event %q (known: %s)", s, strings.Join(names, ", "))
}

// Direction of a call as Bulutfon states it.
const (
	Inbound  = "IN"
	Outbound = "OUT"
)

// Redirection values of a callflow step.
const (
	RedirectedToMenu      = "REDIRECTED_TO_MENU"
	RedirectedToExtension = "REDIRECTED_TO_EXTENSION"
	RedirectedToGroup     = "REDIRECTED_TO_GROUP"
	RedirectedToExternal  = "REDIRECTED_TO_EXTERNAL"
	ConnectingToMenu      = "CONNECTING_TO_MENU"
	ConnectingToExtension = "CONNECTING_TO_EXTENSION"
	ConnectingToGroup     = "CONNECTING_TO_GROUP"
	ConnectingToExternal  = "CONNECTING_TO_EXTERNAL"
	RedirectionOther      = "OTHER"
)

// Event is one call event, before it is encoded for a hook. Numbers are
// strings of digits (or whatever the PBX gave when not digits); the encoder
// decides how to print them.
type Event struct {
	Type      EventType
	CallID    string // the webhook's uuid
	Seq       int    // 1, 2, ... within the call, in the order events happened
	Number    string // the PBX number that owns the call: hooks bind to it
	Caller    string
	Callee    string
	Direction string
	Time      time.Time

	Destination string // routing events only

	// Autodial is set on every event of a call placed on request.
	Autodial *Autodial
	// Digit is the key the called person of such a call pressed first
	// (call_hangup only); "" when none.
	Digit string

	// call_hangup and missing_call only.
	HangupCause       string
	CDR               *Record
	TalkDuration      int // whole seconds from first answer to hangup
	HangupDetail      string
	ResultDisposition string // "SUCCESS" or ""
}

// Record is the call detail record carried by call_hangup and missing_call.
type Record struct {
	UUID        string
	CallType    string // voice or fax
	Direction   string
	Caller      string
	Callee      string
	CallTime    time.Time
	AnswerTime  time.Time // zero: never answered
	HangupTime  time.Time
	Recorded    bool
	RecordFile  string // where the PBX keeps the recording, when it says; "" otherwise
	HangupCause string
	Disposition string // sip_hangup_disposition
	Callflow    []Step

	// How kanca learned of the end when it did not see it happen.
	Reconciled bool // the channels vanished while the PBX connection was down
	Expired    bool // the call outlived the maximum call duration
	// Recovered: what kanca did not see live (the call, or its end) was
	// read from the PBX's own records after a gap; its events were sent
	// late.
	Recovered bool
	// Estimated names the fields kanca did not see happen, stated as well
	// as a channel list lets it, by their webhook names: "answer_time"
	// (an answer a list showed: it happened by then), and for a
	// reconciled or expired end the end's fields (estimatedEnd). Nil when
	// every field is the PBX's word.
	Estimated []string
}

// estimatedEnd is what a call whose end nobody saw estimates.
var estimatedEnd = []string{"hangup_time", "talk_duration", "hangup_cause", "sip_hangup_disposition"}

// Step is one entry of a record's callflow.
type Step struct {
	Callee      string
	Start       time.Time
	Answer      time.Time // zero: null
	Hangup      time.Time // zero: null
	Redirection string
	Target      string // REDIRECTED_TO_* only
}
