package formats

import (
	"testing"
	"time"

	"github.com/kanca/kanca/cdr"
)

// FuzzForm checks, for events built from arbitrary strings, that the form
// body parses with net/url into exactly the leaves the JSON body implies:
// the Go-side mirror of the PHP check in php_test.go.
func FuzzForm(f *testing.F) {
	f.Add(uint8(5), "anonymous", "908508850000", "Satış + destek & co=1", "99", "f615986c", "", false, uint8(3))
	f.Add(uint8(2), "0532 000", "1234567890123456789", "a[b]=c&d", "", "x%41 y", "incoming_call_group", true, uint8(1))
	f.Add(uint8(6), "\x00\xff", "\"\\\n", "😀", "0", "", "", false, uint8(0))
	f.Fuzz(func(t *testing.T, typ uint8, caller, callee, queue, target, id, name string, asStrings bool, steps uint8) {
		start := time.Unix(1435762851, 86820000)
		ev := cdr.Event{
			Type:         cdr.EventTypes[int(typ)%len(cdr.EventTypes)],
			CallID:       id,
			Caller:       caller,
			Callee:       callee,
			Direction:    cdr.Inbound,
			Time:         start,
			Destination:  queue,
			HangupCause:  queue,
			HangupDetail: target,
			CDR: &cdr.Record{
				UUID:        id,
				CallType:    "voice",
				Direction:   cdr.Inbound,
				Caller:      caller,
				Callee:      callee,
				CallTime:    start,
				HangupTime:  start.Add(time.Minute),
				HangupCause: queue,
				Disposition: target,
				Reconciled:  steps&4 != 0,
				Expired:     steps&8 != 0,
			},
		}
		for i := range int(steps % 4) {
			ev.CDR.Callflow = append(ev.CDR.Callflow, cdr.Step{
				Callee:      []string{callee, target, queue}[i%3],
				Start:       start.Add(time.Duration(i) * time.Second),
				Answer:      start.Add(time.Duration(i+1) * time.Second),
				Redirection: cdr.RedirectedToGroup,
				Target:      target,
			})
		}
		o := Options{Location: time.UTC, NumbersAsStrings: asStrings, EventName: name, CDRURL: id}
		if steps&16 != 0 {
			o.DomainID, o.AccountID = new(int64(len(caller))), new(-int64(len(callee)))
		}
		checkFormMirrorsJSON(t, ev, o)
	})
}
