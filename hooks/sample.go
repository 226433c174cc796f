package hooks

import (
	"time"

	"github.com/kanca/kanca/cdr"
)

// SampleEvent returns a plausible event of type t on number, for `kanca
// hooks test`: an inbound call from a mobile that a menu routed to
// extension 101, which answered.
func SampleEvent(t cdr.EventType, number string, now time.Time) cdr.Event {
	start := now.Add(-42 * time.Second).Truncate(time.Second)
	answer := start.Add(5 * time.Second)
	end := now.Truncate(time.Second)
	ev := cdr.Event{
		Type:      t,
		CallID:    newDeliveryID(now), // any unique uuid will do
		Seq:       1,
		Number:    number,
		Caller:    "905320000000",
		Callee:    number,
		Direction: cdr.Inbound,
		Time:      now,
	}
	switch t {
	case cdr.CallInitExtension:
		ev.Destination = "101"
	case cdr.CallInitGroup:
		ev.Destination = "200"
	case cdr.CallInitMenu:
		ev.Destination = "10"
	case cdr.CallHangup, cdr.MissingCall:
		rec := &cdr.Record{
			UUID: ev.CallID, CallType: "voice", Direction: cdr.Inbound,
			Caller: ev.Caller, Callee: number,
			CallTime: start, AnswerTime: start, HangupTime: end, // the menu answered first
			HangupCause: "NORMAL_CLEARING", Disposition: "recv_bye",
			Callflow: []cdr.Step{
				{Callee: number, Start: start, Redirection: cdr.RedirectedToMenu, Target: "10"},
				{Callee: "10", Start: start, Answer: start, Hangup: answer, Redirection: cdr.RedirectedToExtension, Target: "101"},
				{Callee: "101", Start: answer, Answer: answer, Hangup: end, Redirection: cdr.ConnectingToExtension},
			},
		}
		ev.HangupCause, ev.HangupDetail = rec.HangupCause, rec.Disposition
		ev.TalkDuration = int(end.Sub(start) / time.Second)
		ev.ResultDisposition = "SUCCESS"
		if t == cdr.MissingCall {
			rec.AnswerTime, rec.Callflow = time.Time{}, rec.Callflow[:1]
			rec.HangupCause, rec.Disposition = "ORIGINATOR_CANCEL", "recv_cancel"
			ev.HangupCause, ev.HangupDetail, ev.TalkDuration, ev.ResultDisposition = rec.HangupCause, rec.Disposition, 0, ""
		}
		ev.CDR = rec
	}
	return ev
}
