package esl

import (
	"cmp"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
)

// row is one channel as "show channels as json" lists it: a row of
// FreeSWITCH's core database table channels, every value a string. Only
// the columns kanca reads are named.
type row struct {
	UUID         string `json:"uuid"`
	Direction    string `json:"direction"`
	CreatedEpoch string `json:"created_epoch"`
	Name         string `json:"name"`
	State        string `json:"state"`
	CIDName      string `json:"cid_name"`
	CIDNum       string `json:"cid_num"`
	Dest         string `json:"dest"`
	Context      string `json:"context"`
	Hostname     string `json:"hostname"` // the switch name, as events' FreeSWITCH-Switchname
	Callstate    string `json:"callstate"`
	CalleeNum    string `json:"callee_num"`
	CallUUID     string `json:"call_uuid"`
	InitialDest  string `json:"initial_dest"`
	// The caller id the leg came with: FreeSWITCH rewrites cid_num in
	// place (a pickup, a transfer, a display update), never these.
	InitialCIDName string `json:"initial_cid_name"`
	InitialCIDNum  string `json:"initial_cid_num"`
	// What it runs now: a leg adopted mid-call is routed by it (bridge
	// user/1000, bridge sofia/gateway/...).
	Application     string `json:"application"`
	ApplicationData string `json:"application_data"`
}

// parseChannels reads the answer to "show channels as json":
// {"row_count":N,"rows":[...]}, and {"row_count": 0} with no rows.
func parseChannels(body string) ([]row, error) {
	var list struct {
		RowCount *int  `json:"row_count"`
		Rows     []row `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, fmt.Errorf("show channels as json: %w: %s", ErrMalformed, follow.Excerpt([]byte(body)))
	}
	if list.RowCount == nil {
		return nil, fmt.Errorf("show channels as json: %w: no row_count", ErrMalformed)
	}
	return list.Rows, nil
}

// callPair is a bridge as "show calls as json" lists it (mod_commands'
// show calls, FreeSWITCH's basic_calls view): a row per channel that is
// no bridge's B leg, with its B leg's columns ("b_" ones) when it is a
// bridge's A leg; the wrapper is "show channels as json"'s. Only the
// columns kanca reads are named. Not yet checked against a recording:
// the shape is read from switch_core_sqldb.c's view and
// show_as_json_callback (NULL columns are empty strings).
type callPair struct {
	A      string `json:"uuid"`
	B      string `json:"b_uuid"`
	BDest  string `json:"b_dest"`
	BCID   string `json:"b_cid_num"`
	BDir   string `json:"b_direction"`
	ADir   string `json:"direction"`
	BState string `json:"b_callstate"`
	// Created is when the bridge formed (call_created_epoch, whole
	// seconds: the calls table row is written at CHANNEL_BRIDGE).
	Created string `json:"call_created_epoch"`
}

// parseCalls reads the answer to "show calls as json", keeping the rows
// of bridged pairs.
func parseCalls(body string) ([]callPair, error) {
	var list struct {
		RowCount *int       `json:"row_count"`
		Rows     []callPair `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, fmt.Errorf("show calls as json: %w: %s", ErrMalformed, follow.Excerpt([]byte(body)))
	}
	if list.RowCount == nil {
		return nil, fmt.Errorf("show calls as json: %w: no row_count", ErrMalformed)
	}
	var pairs []callPair
	for _, r := range list.Rows {
		if r.A != "" && r.B != "" {
			pairs = append(pairs, r)
		}
	}
	return pairs, nil
}

// calls asks for the bridged pairs and collects the events that arrive
// before the answer, as list does. A switch that refuses the command
// lists no pairs: adoption then asks each channel.
func (e *session) calls(ctx context.Context) ([]callPair, []Fields, error) {
	body, early, err := e.collect(ctx, "show calls as json")
	if errors.Is(err, ErrCommand) {
		return nil, early, nil
	}
	if err != nil {
		return nil, early, err
	}
	pairs, err := parseCalls(body)
	return pairs, early, err
}

// CountChannels asks c for the channel list the Source reconciles with and
// counts it; an error means reconciliation would fail the same way.
func CountChannels(ctx context.Context, c *Conn) (int, error) {
	body, err := c.API(ctx, "show channels as json")
	if err != nil {
		return 0, err
	}
	rows, err := parseChannels(body)
	return len(rows), err
}

// channel is the snapshot a listed channel stands for when it is adopted,
// shaped as DecodeFields shapes an event's channel.
func (r row) channel() cdr.Channel {
	ch := cdr.Channel{
		ID:              r.UUID,
		Name:            r.Name,
		LinkedID:        r.UUID,
		CallerNumber:    r.CIDNum,
		CallerName:      r.CIDName,
		ConnectedNumber: r.CalleeNum,
		Context:         r.Context,
		// The tracker reads the number a leg was created for; after a
		// transfer dest is the new target and initial_dest the DID.
		Exten:        cmp.Or(r.InitialDest, r.Dest),
		DialedNumber: r.InitialDest,
		App:          r.Application,
		AppData:      r.ApplicationData,
	}
	// A leg FreeSWITCH originated for another carries that leg's id as its
	// call_uuid from CHANNEL_ORIGINATE on; a leg of its own carries its own
	// id, or none before it is bridged.
	switch r.Callstate {
	case "ACTIVE", "HELD", "UNHELD":
		ch.State = "Up"
	case "EARLY":
		ch.State = "Ringing"
	default:
		ch.State = "Ring"
	}
	if r.Direction == "inbound" {
		// Who called in, as the leg's first event said: after a pickup
		// cid_num is the picker's extension, and the call would be taken
		// for one of the picker's own.
		ch.CallerNumber = cmp.Or(r.InitialCIDNum, r.CIDNum)
		ch.CallerName = cmp.Or(r.InitialCIDName, r.CIDName)
	}
	// A leg that came in (inbound) is its call's first leg: bridged as
	// the B side (a picker's intercept bridges the picker's leg to it),
	// its call_uuid names the other leg's call.
	if r.CallUUID != "" && r.CallUUID != r.UUID && r.Direction != "inbound" {
		legOf(&ch, r.CallUUID)
	}
	if sec, err := strconv.ParseInt(r.CreatedEpoch, 10, 64); err == nil && sec > 0 {
		ch.Created = time.Unix(sec, 0)
	}
	return ch
}

// legOf makes ch a leg FreeSWITCH originated for the leg a: of a's call,
// and ringing until it answers, never a call of its own.
func legOf(ch *cdr.Channel, a string) {
	ch.LinkedID = a
	if ch.State == "Ring" {
		ch.State = "Ringing"
	}
}

// Describe asks FreeSWITCH, for each channel about to be adopted, what
// the channel list does not say (see follow.Describer): "uuid_dump UUID
// json" gives the session's variables and caller profile (its caller
// number, which the list lacks before the channel routes), among them the number it presents
// outside (effective_caller_id_number, set by an outbound route before the
// bridge), the number it was dialled as (sip_req_user) and the DID
// variables. A channel gone meanwhile is left as listed.
func (e *session) Describe(ctx context.Context, chans []*cdr.Channel) error {
	for _, ch := range chans {
		// A leg FreeSWITCH originated and bridged (a callee talking to its
		// caller) is told by the list of calls: its call is the bridge's A
		// leg's, and it was dialled as its destination. Its session has
		// nothing the tracker reads of a callee besides, so it is not
		// asked; the A leg is, for the number its call arrived on.
		if p, ok := e.pairs[ch.ID]; ok && p.BDir == "outbound" {
			if ch.LinkedID == ch.ID || ch.LinkedID == "" {
				legOf(ch, p.A)
			}
			ch.DialedNumber = cmp.Or(ch.DialedNumber, p.BDest)
			ch.CallerNumber = cmp.Or(ch.CallerNumber, p.BCID)
			// Bridged with the leg it was originated for, unless its
			// session says otherwise.
			ch.DialedBy = p.A
			if ch.State != "Up" {
				continue
			}
			// Answered: when, only its session says. Placed at the list
			// or its creation instead, a step answered in the gap would
			// be seconds off.
			f, err := e.dump(ctx, ch.ID)
			if err != nil {
				return err
			}
			ch.Answered = answeredAt(f)
			ch.DialedBy = cmp.Or(f.aLeg(), ch.DialedBy)
			continue
		}
		f, err := e.dump(ctx, ch.ID)
		if err != nil {
			return err
		}
		if f == nil {
			continue
		}
		e.src.describe(ch, f)
		if ch.Recording, err = e.recording(ctx, ch.ID); err != nil {
			return err
		}
	}
	return nil
}

// recording asks which file a session is being recorded to, if any
// ("uuid_buglist UUID": its media bugs, record_session's function named
// session_record, its target the file), keeping the events read
// meanwhile. A recording begun in a gap leaves no other trace until the
// session ends. The answer's shape is mod_commands' and the core's
// (switch_core_media_bug_enumerate), not yet checked against a
// recording.
func (e *session) recording(ctx context.Context, id string) (string, error) {
	body, ok, err := e.ask(ctx, "uuid_buglist "+id)
	if err != nil || !ok || strings.TrimSpace(body) == "" {
		return "", err // or the session ended since the list
	}
	var bugs struct {
		Bugs []struct {
			Function string `xml:"function"`
			Target   string `xml:"target"`
		} `xml:"media-bug"`
	}
	if err := xml.Unmarshal([]byte(body), &bugs); err != nil {
		return "", fmt.Errorf("uuid_buglist %s: %w", id, err)
	}
	for _, b := range bugs.Bugs {
		if b.Function == "session_record" && b.Target != "" {
			return b.Target, nil
		}
	}
	return "", nil
}

// ask sends cmd, a question about one session, keeping the events read
// meanwhile; not ok when FreeSWITCH refuses it, as it does for a session
// that ended since the list ("-ERR No such channel!").
func (e *session) ask(ctx context.Context, cmd string) (body string, ok bool, err error) {
	body, early, err := e.collect(ctx, cmd)
	e.early = append(e.early, early...)
	if errors.Is(err, ErrCommand) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", cmd, err)
	}
	return body, true, nil
}

// dump asks for a session's variables and caller profile ("uuid_dump
// UUID json"); nil for a channel that ended since the list.
func (e *session) dump(ctx context.Context, id string) (Fields, error) {
	body, ok, err := e.ask(ctx, "uuid_dump "+id+" json")
	if err != nil || !ok {
		return nil, err
	}
	f, err := ParseJSON([]byte(body))
	if err != nil {
		return nil, fmt.Errorf("uuid_dump %s: %w", id, err)
	}
	return f, nil
}

// answeredAt is when a session answered (Caller-Channel-Answered-Time,
// microseconds, "0" before it); zero if it did not, or f is nil.
func answeredAt(f Fields) time.Time {
	return usec(f["caller-channel-answered-time"])
}

// usec reads a session's time in microseconds, zero for "0" or none.
func usec(s string) time.Time {
	if us, err := strconv.ParseInt(s, 10, 64); err == nil && us > 0 {
		return time.UnixMicro(us)
	}
	return time.Time{}
}

// epoch reads a time FreeSWITCH keeps in whole seconds (an _epoch
// column or variable), zero for "0" or none.
func epoch(s string) time.Time {
	if sec, err := strconv.ParseInt(s, 10, 64); err == nil && sec > 0 {
		return time.Unix(sec, 0)
	}
	return time.Time{}
}

func (s *Source) describe(ch *cdr.Channel, f Fields) {
	// The channel table has a leg's call_uuid from its CHANNEL_ORIGINATE
	// (or a bridge) on: a callee's leg listed just after its CHANNEL_CREATE
	// stands there as a call of its own, while its session already names
	// the leg it was originated for, as its own events do (Other-Type
	// "originator", a queue agent's member uuid). Read as the decoder
	// reads those events, it joins that leg's call.
	// A leg that came in is its call's first whatever it was bridged to
	// since (its session's Other-Leg then names a picker's leg).
	if ch.LinkedID == ch.ID && f["call-direction"] != "inbound" {
		if a := f.aLeg(); a != "" {
			legOf(ch, a)
		}
	}
	// The channel table fills cid_num only at CS_ROUTING: a channel
	// listed before has none, its session has.
	if ch.CallerNumber == "" {
		ch.CallerNumber = f["caller-caller-id-number"]
	}
	if n := f["variable_effective_caller_id_number"]; n != "" && n != ch.CallerNumber {
		ch.Presented = n
	}
	if ch.DialedNumber == "" {
		ch.DialedNumber = f["variable_sip_req_user"]
	}
	ch.Answered = answeredAt(f)
	ch.Routed = usec(f["caller-profile-created-time"])
	ch.DialedBy = f.aLeg()
	if f["variable_cc_side"] == "member" {
		// mod_callcenter keeps the queue on the member's session after
		// it bridged the member to an agent (uuid_bridge), which is all
		// the list then shows.
		ch.Queue, _, _ = strings.Cut(f["variable_cc_queue"], "@")
		if ch.Queue != "" {
			ch.Queued = epoch(f["variable_cc_queue_joined_epoch"])
		}
	}
	for _, name := range s.cfg.DIDVariables {
		bare := strings.TrimLeft(name, "_")
		v := f["variable_"+strings.ToLower(bare)]
		if v == "" || ch.Vars[bare] != "" {
			continue
		}
		ch.WithVar(bare, v)
	}
}
