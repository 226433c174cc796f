// Package formats encodes call events as the bodies Bulutfon receivers read:
// JSON with the spec's field order, and PHP-friendly form data.
//
// Field order follows the spec's examples. Routing and init events send
// event_type, caller, callee, uuid, direction, timestamp (and destination on
// routing events). call_hangup and missing_call keep the order of the spec's
// 2015 example (event_type, caller, callee, uuid, timestamp, hangup_cause,
// direction, cdr) and append the later revision's fields after cdr. So the
// spec's call_hangup example is reproduced byte for byte up to the end of
// cdr, and receivers that read the body as a stream see the old shape first.
//
// Both formats are written straight into one byte slice by the same walk over
// the event, so the form body always has the JSON's keys in the JSON's order.
//
// The form is what PHP's http_build_query would make of json_decode($json,
// true): brackets in keys percent-encoded, lists indexed, an empty list left
// out (a form cannot spell one), true as 1, false as 0, and null as an empty
// value. PHP's parser then gives $_POST the JSON's structure, with every
// scalar as a string.
package formats

import (
	"fmt"
	"strings"
	"time"

	"github.com/kanca/kanca/cdr"
)

// Format is how a hook wants its bodies.
type Format string

const (
	JSON Format = "json"
	Form Format = "form"
)

// Options are what a hook (or the command line) changes in a body.
type Options struct {
	Location         *time.Location // for ISO times; nil means time.Local
	NumbersAsStrings bool           // emit phone numbers as JSON strings instead of integers
	EventName        string         // the spelling of event_type the hook asked for; "" means canonical
	DomainID         *int64         // omitted when nil
	AccountID        *int64         // omitted when nil
	CDRURL           string         // call_hangup/missing_call: omitted when ""
}

// Encode renders ev in format f and returns the body and its Content-Type.
func Encode(f Format, ev cdr.Event, o Options) (body []byte, contentType string, err error) {
	var e encoder
	switch f {
	case JSON:
		contentType = jsonContentType
	case Form:
		e.form = true
		contentType = formContentType
	default:
		return nil, "", fmt.Errorf("formats: encode %s event: unknown format %q", ev.Type, f)
	}
	var hangup bool
	switch ev.Type {
	case cdr.CallInit, cdr.FaxInit, cdr.CallInitExtension, cdr.CallInitGroup, cdr.CallInitMenu:
	case cdr.CallHangup, cdr.MissingCall:
		hangup = true
	default:
		return nil, "", fmt.Errorf("formats: encode call %s: unknown event type %q", ev.CallID, ev.Type)
	}
	e.loc = o.Location
	if e.loc == nil {
		e.loc = time.Local
	}
	e.numbersAsStrings = o.NumbersAsStrings
	e.b = make([]byte, 0, sizeHint(ev, e.form))

	name := o.EventName
	if name == "" {
		name = string(ev.Type)
	}
	e.beginObject("")
	e.key("event_type")
	e.str(name)
	e.key("caller")
	e.number(ev.Caller)
	e.key("callee")
	e.number(ev.Callee)
	e.key("uuid")
	e.str(ev.CallID)
	if hangup {
		e.key("timestamp")
		e.micros(ev.Time)
		e.key("hangup_cause")
		e.str(ev.HangupCause)
		e.key("direction")
		e.str(ev.Direction)
		e.record(ev.CDR)
		e.key("talk_duration")
		e.int(int64(ev.TalkDuration))
		e.key("hangup_detail")
		e.str(ev.HangupDetail)
		e.key("result_disposition")
		e.str(ev.ResultDisposition)
	} else {
		e.key("direction")
		e.str(ev.Direction)
		e.key("timestamp")
		e.micros(ev.Time)
		switch ev.Type {
		case cdr.CallInitExtension, cdr.CallInitGroup, cdr.CallInitMenu:
			e.key("destination")
			e.number(ev.Destination)
		}
	}
	if o.DomainID != nil {
		e.key("domain_id")
		e.int(*o.DomainID)
	}
	if o.AccountID != nil {
		e.key("account_id")
		e.int(*o.AccountID)
	}
	if hangup && o.CDRURL != "" {
		e.key("cdr_url")
		e.str(o.CDRURL)
	}
	if ev.Autodial != nil {
		e.autodial(ev, hangup)
	}
	e.endObject()
	return e.b, contentType, nil
}

// record writes the cdr member; a missing record is null, as in JSON.
func (e *encoder) record(r *cdr.Record) {
	if r == nil {
		e.key("cdr")
		e.null()
		return
	}
	e.beginObject("cdr")
	e.key("uuid")
	e.str(r.UUID)
	e.key("bf_calltype")
	e.str(r.CallType)
	e.key("bf_direction")
	e.str(r.Direction)
	e.key("bf_caller")
	e.number(r.Caller)
	e.key("bf_callee")
	e.number(r.Callee)
	e.key("call_time")
	e.time(r.CallTime)
	e.key("answer_time")
	e.time(r.AnswerTime)
	e.key("hangup_time")
	e.time(r.HangupTime)
	e.key("call_record")
	e.bool(r.Recorded)
	if r.RecordFile != "" {
		// Where the PBX keeps the recording, so a receiver can fetch it.
		e.key("call_record_file")
		e.str(r.RecordFile)
	}
	e.key("hangup_cause")
	e.str(r.HangupCause)
	e.key("sip_hangup_disposition")
	e.str(r.Disposition)
	e.beginArray("callflow")
	for i, s := range r.Callflow {
		e.beginElement(i)
		e.key("callee")
		e.number(s.Callee)
		e.key("start_time")
		e.time(s.Start)
		e.key("answer_time")
		e.time(s.Answer)
		e.key("hangup_time")
		e.time(s.Hangup)
		e.key("redirection")
		e.str(s.Redirection)
		if s.Target != "" {
			e.key("redirection_target")
			e.number(s.Target)
		}
		e.endObject()
	}
	e.endArray()
	if r.Reconciled {
		e.key("reconciled")
		e.bool(true)
	}
	if r.Expired {
		e.key("expired")
		e.bool(true)
	}
	if r.Recovered {
		e.key("recovered")
		e.bool(true)
	}
	if len(r.Estimated) > 0 {
		// Which fields kanca did not see happen: an object of flags reads
		// the same in JSON and in a PHP form ($cdr['estimated']['answer_time']).
		e.beginObject("estimated")
		for _, f := range r.Estimated {
			e.key(f)
			e.bool(true)
		}
		e.endObject()
	}
	e.endObject()
}

// sizeHint guesses the body length so that Encode allocates once; form
// bodies repeat the escaped key path on every field, hence their larger steps.
func sizeHint(ev cdr.Event, form bool) int {
	n, rec, step := 320, 560, 240
	if form {
		rec, step = 900, 480
	}
	if ev.CDR != nil {
		n += rec + step*len(ev.CDR.Callflow)
	}
	return n
}

// ParseFormat accepts json, form, and the spec's name x-www-form-urlencoded.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "json":
		return JSON, nil
	case "form", "x-www-form-urlencoded":
		return Form, nil
	}
	return "", fmt.Errorf("formats: unknown format %q (valid: json, form, x-www-form-urlencoded)", s)
}

// autodial writes the fields of a call placed on request: the spec's
// autodial, additional_data and callback_url on every event, and on the
// hangup events the key the called person pressed (gather, null when
// none).
func (e *encoder) autodial(ev cdr.Event, hangup bool) {
	e.key("autodial")
	e.bool(true)
	e.key("additional_data")
	e.strOrNull(ev.Autodial.AdditionalData)
	e.key("callback_url")
	e.strOrNull(ev.Autodial.CallbackURL)
	if hangup {
		e.key("gather")
		if ev.Digit == "" {
			e.null()
		} else {
			e.str(ev.Digit)
		}
	}
}

func (e *encoder) strOrNull(s *string) {
	if s == nil {
		e.null()
		return
	}
	e.str(*s)
}
