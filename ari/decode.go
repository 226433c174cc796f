package ari

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/CyCoreSystems/ari/v5"

	"github.com/kanca/kanca/cdr"
)

// Event types ari/v5 does not name: ChannelToneDetected (fax CNG detection,
// Asterisk 16+), ChannelTransfer (Asterisk 20+), and the application
// registration and REST-over-WebSocket messages of Asterisk 20+.
const (
	typeChannelToneDetected = "ChannelToneDetected"
	typeBlindTransfer       = "BridgeBlindTransfer"
	typeAttendedTransfer    = "BridgeAttendedTransfer"
	typeApplicationReplaced = "ApplicationReplaced"
)

var extraKnownTypes = []string{
	typeChannelToneDetected,
	"ChannelTransfer",
	"ApplicationRegistered",
	"ApplicationUnregistered",
	"RESTResponse",
}

// knownTypes holds every event type ARI documents. A type outside it is
// counted as unknown: either a newer Asterisk or a misconfigured peer, which
// an operator wants to see in metrics rather than in logs.
var knownTypes = func() map[string]bool {
	m := make(map[string]bool)
	v := reflect.ValueOf(ari.Events)
	for i := range v.NumField() {
		if s := v.Field(i).String(); s != "" && s != ari.Events.All {
			m[s] = true
		}
	}
	for _, s := range extraKnownTypes {
		m[s] = true
	}
	return m
}()

// ErrMalformed is wrapped by every Decode error, so callers can tell a bad
// frame from a transport failure.
var ErrMalformed = errors.New("malformed ARI frame")

// frame mirrors the JSON of the ARI events kanca maps. It is a union: each
// event type fills its own fields. Own structs rather than ari/v5's event
// types because those lack fields Asterisk sends (dialplan app_name and
// app_data, caller_rdnis, channelvars, tech_cause, soft, cause_txt) and
// parse timestamps in one layout only.
type frame struct {
	Type       string `json:"type"`
	Timestamp  string `json:"timestamp"`
	AsteriskID string `json:"asterisk_id"`

	Channel *channel `json:"channel"`

	DialplanApp     string `json:"dialplan_app"`      // ChannelDialplan
	DialplanAppData string `json:"dialplan_app_data"` // ChannelDialplan

	Variable string `json:"variable"` // ChannelVarset
	Value    string `json:"value"`    // ChannelVarset

	Peer       *channel `json:"peer"`   // Dial
	Caller     *channel `json:"caller"` // Dial
	DialStatus string   `json:"dialstatus"`
	DialString string   `json:"dialstring"`
	Forward    string   `json:"forward"`

	Digit string `json:"digit"` // ChannelDtmfReceived

	Bridge *bridge `json:"bridge"` // ChannelEnteredBridge, ChannelLeftBridge, BridgeBlindTransfer

	// BridgeBlindTransfer and BridgeAttendedTransfer.
	Result     string   `json:"result"`
	Transferee *channel `json:"transferee"`
	Exten      string   `json:"exten"` // blind: where the transferee goes
	// attended: the transferer's leg to the target, and the target when
	// Asterisk names it; else the target is who shares the destination
	// bridge with the transferee.
	FirstLeg          *channel `json:"transferer_first_leg"`
	SecondLeg         *channel `json:"transferer_second_leg"`
	TransferTarget    *channel `json:"transfer_target"`
	FirstLegBridge    *bridge  `json:"transferer_first_leg_bridge"`
	SecondLegBridge   *bridge  `json:"transferer_second_leg_bridge"`
	DestinationBridge string   `json:"destination_bridge"`

	Playback *playback `json:"playback"` // PlaybackFinished

	Cause     int    `json:"cause"`      // ChannelHangupRequest, ChannelDestroyed
	CauseText string `json:"cause_txt"`  // ChannelDestroyed
	TechCause int    `json:"tech_cause"` // ChannelHangupRequest, ChannelDestroyed
	Soft      bool   `json:"soft"`       // ChannelHangupRequest
}

// bridge mirrors what kanca reads of ARI's Bridge model.
type bridge struct {
	ID       string   `json:"id"`
	Class    string   `json:"bridge_class"` // "parking" for a parking lot's holding bridge
	Name     string   `json:"name"`         // a parking bridge's lot
	Channels []string `json:"channels"`
}

// channel mirrors ARI's Channel model, the snapshot every channel event
// carries and GET /ari/channels lists.
type channel struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	State     string       `json:"state"`
	Caller    ari.CallerID `json:"caller"`
	Connected ari.CallerID `json:"connected"`
	Dialplan  struct {
		Context string `json:"context"`
		Exten   string `json:"exten"`
		AppName string `json:"app_name"`
		AppData string `json:"app_data"`
	} `json:"dialplan"`
	CreationTime string            `json:"creationtime"`
	CallerRDNIS  string            `json:"caller_rdnis"`
	ChannelVars  map[string]string `json:"channelvars"`
}

// linkedIDVar is the channel variable that carries the call id when ari.conf
// lists it in channelvars; ARI's Channel model has no linkedid of its own.
const linkedIDVar = "CHANNEL(linkedid)"

// recordingVar is the variable MixMonitor sets on the channel it records:
// the file (app_mixmonitor.c).
const recordingVar = "MIXMONITOR_FILENAME"

// Decode turns one raw ARI WebSocket frame into at most one tracker input.
// ok is false for events the tracker does not need (device state, bridge
// life cycle, Stasis, global variables, ChannelConnectedLine, unknown
// types); that is not an error. A frame that is not valid JSON, has no type,
// or lacks what its mapped type needs returns an error wrapping ErrMalformed.
//
// Of ChannelVarset, the tracker reads only the variables
// cdr.Config.ReadsVariable names: a filter ahead of Decode may skip the
// others' frames without changing any webhook.
//
// ChannelConnectedLine is ignored on purpose: every later snapshot of the
// channel carries the connected party anyway, and turning it into a state
// input would tell the tracker about a state change that did not happen.
func Decode(data []byte) (in cdr.Input, ok bool, err error) {
	in, _, ok, err = decode(data)
	return in, ok, err
}

// decode is Decode that also returns the frame's type, so the Source can
// count frames by type without parsing them twice. typ is "" only when the
// frame is not a JSON object with a type.
func decode(data []byte) (in cdr.Input, typ string, ok bool, err error) {
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		// An event kanca ignores may reuse a field name with another
		// shape; that is not the frame's fault, so only the type decides.
		var head struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &head) != nil || head.Type == "" || mapped(head.Type) {
			return in, head.Type, false, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return in, head.Type, false, nil
	}
	if f.Type == "" {
		return in, "", false, fmt.Errorf("%w: no event type", ErrMalformed)
	}
	if !mapped(f.Type) || (f.Type == ari.Events.ChannelVarset && f.Channel == nil) ||
		(f.Type == ari.Events.PlaybackFinished && f.Playback.channel() == "") {
		// A playback on a bridge is no channel's.
		return in, f.Type, false, nil
	}
	if kindOf[f.Type] == cdr.KindTransfer && (f.Result != "Success" || f.Transferee == nil) {
		// A failed transfer leaves the call where it was; one without a
		// transferee moved no call kanca follows.
		return in, f.Type, false, nil
	}
	in, err = f.input()
	if err != nil {
		return cdr.Input{}, f.Type, false, fmt.Errorf("%w: %s: %v", ErrMalformed, f.Type, err)
	}
	return in, f.Type, true, nil
}

var kindOf = map[string]cdr.Kind{
	ari.Events.ChannelCreated:       cdr.KindCreated,
	ari.Events.ChannelStateChange:   cdr.KindState,
	ari.Events.ChannelDialplan:      cdr.KindDialplan,
	ari.Events.ChannelVarset:        cdr.KindVar,
	ari.Events.ChannelCallerID:      cdr.KindCallerID,
	ari.Events.Dial:                 cdr.KindDial,
	ari.Events.ChannelDtmfReceived:  cdr.KindDTMF,
	ari.Events.ChannelEnteredBridge: cdr.KindBridgeEnter,
	ari.Events.ChannelLeftBridge:    cdr.KindBridgeLeave,
	ari.Events.ChannelHangupRequest: cdr.KindHangupRequest,
	ari.Events.ChannelDestroyed:     cdr.KindDestroyed,
	typeChannelToneDetected:         cdr.KindFax,
	typeBlindTransfer:               cdr.KindTransfer,
	ari.Events.PlaybackFinished:     cdr.KindPlayed,
	typeAttendedTransfer:            cdr.KindTransfer,
}

func mapped(typ string) bool {
	_, ok := kindOf[typ]
	return ok
}

func (f *frame) input() (cdr.Input, error) {
	in := cdr.Input{Kind: kindOf[f.Type], Server: f.AsteriskID}
	var err error
	if in.Time, err = parseTime(f.Timestamp); err != nil {
		return in, fmt.Errorf("timestamp: %w", err)
	}
	// Dial names its legs peer and caller, a transfer the transferee;
	// every other mapped event has one channel.
	snap := f.Channel
	switch in.Kind {
	case cdr.KindPlayed:
		in.Channel = cdr.Channel{ID: f.Playback.channel()}
		return in, nil
	case cdr.KindDial:
		snap = f.Peer
	case cdr.KindTransfer:
		snap = f.Transferee
	}
	if snap == nil || snap.ID == "" {
		return in, errors.New("no channel")
	}
	if in.Channel, err = snap.toCDR(); err != nil {
		return in, err
	}

	switch in.Kind {
	case cdr.KindDialplan:
		in.Channel.App, in.Channel.AppData = f.DialplanApp, f.DialplanAppData
	case cdr.KindVar:
		in.Var, in.Value = f.Variable, f.Value
	case cdr.KindDial:
		if f.Caller != nil && f.Caller.ID != "" {
			other, err := f.Caller.toCDR()
			if err != nil {
				return in, fmt.Errorf("caller: %w", err)
			}
			in.Other = &other
		}
		in.DialStatus, in.DialString, in.Forward = f.DialStatus, f.DialString, f.Forward
	case cdr.KindDTMF:
		in.Digit = f.Digit
	case cdr.KindBridgeEnter, cdr.KindBridgeLeave:
		if f.Bridge == nil || f.Bridge.ID == "" {
			return in, errors.New("no bridge")
		}
		in.Bridge = f.Bridge.ID
		if in.Kind == cdr.KindBridgeEnter && f.Bridge.Class == "parking" {
			// A parking lot's holding bridge: the channel was parked.
			// ARI names the lot, not the space.
			in.Kind, in.Target = cdr.KindPark, f.Bridge.Name
		}
	case cdr.KindTransfer:
		f.transfer(&in)
	case cdr.KindHangupRequest:
		in.Soft = f.Soft
		if !f.Soft {
			// A soft request's cause is Asterisk's soft-hangup flag
			// (AST_SOFTHANGUP_SHUTDOWN is 4), not a Q.850 cause.
			in.Cause, in.TechCause = f.Cause, f.TechCause
		}
	case cdr.KindDestroyed:
		in.Cause, in.CauseText, in.TechCause = f.Cause, f.CauseText, f.TechCause
	case cdr.KindFax:
		in.Detail = "tone"
	}
	return in, nil
}

// transfer reads a transfer: blind to an extension the transferee now
// runs, or attended to the party the transferer consulted.
func (f *frame) transfer(in *cdr.Input) {
	if f.Type == typeBlindTransfer {
		in.Detail, in.Target = "blind", f.Exten
		return
	}
	in.Detail = "attended"
	if f.SecondLeg != nil {
		in.Target = f.SecondLeg.Connected.Number
	}
	target := ""
	if f.TransferTarget != nil {
		target = f.TransferTarget.ID
	}
	// Else the target is whoever shares the destination bridge with the
	// transferee, the transferer's legs aside.
	notTarget := map[string]bool{in.Channel.ID: true}
	for _, l := range []*channel{f.FirstLeg, f.SecondLeg} {
		if l != nil {
			notTarget[l.ID] = true
		}
	}
	for _, b := range []*bridge{f.FirstLegBridge, f.SecondLegBridge} {
		if target != "" || b == nil || b.ID != f.DestinationBridge {
			continue
		}
		for _, id := range b.Channels {
			if !notTarget[id] {
				target = id
				break
			}
		}
	}
	if target != "" {
		in.Other = &cdr.Channel{ID: target}
	}
}

func (c *channel) toCDR() (cdr.Channel, error) {
	out := cdr.Channel{
		ID:              c.ID,
		Name:            c.Name,
		LinkedID:        c.ChannelVars[linkedIDVar],
		State:           c.State,
		CallerNumber:    c.Caller.Number,
		CallerName:      c.Caller.Name,
		ConnectedNumber: c.Connected.Number,
		RDNIS:           c.CallerRDNIS,
		Context:         c.Dialplan.Context,
		Exten:           c.Dialplan.Exten,
		App:             c.Dialplan.AppName,
		AppData:         c.Dialplan.AppData,
		Vars:            c.ChannelVars,
	}
	if c.CreationTime != "" {
		var err error
		if out.Created, err = parseTime(c.CreationTime); err != nil {
			return out, fmt.Errorf("channel %s creationtime: %w", c.ID, err)
		}
	}
	return out, nil
}

// timeLayouts are tried in order: Asterisk's own (ari.DateFormat, numeric
// zone without a colon; the fractional seconds it always sends are accepted
// whatever their length), then RFC 3339 for proxies and recorders that
// re-encode timestamps.
var timeLayouts = [...]string{"2006-01-02T15:04:05-0700", time.RFC3339Nano}

func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, errors.New("missing")
	}
	var err error
	for _, layout := range timeLayouts {
		var t time.Time
		if t, err = time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither %s nor RFC 3339", s, ari.DateFormat)
}

// playback is what PlaybackFinished says of the sound it played.
type playback struct {
	ID        string `json:"id"`
	TargetURI string `json:"target_uri"` // channel:ID or bridge:ID
	State     string `json:"state"`
}

// channel is the id of the channel p played on, "" for none.
func (p *playback) channel() string {
	if p == nil {
		return ""
	}
	id, _ := strings.CutPrefix(p.TargetURI, "channel:")
	if id == p.TargetURI {
		return ""
	}
	return id
}
