package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Istanbul must load on hosts without a zone database

	"github.com/kanca/kanca/cdr"
)

func istanbul(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		t.Fatalf("load Europe/Istanbul: %v", err)
	}
	return loc
}

// at is 2015-07-01 15:00:51 UTC plus sec seconds: 18:00:51 in Istanbul,
// where the spec's examples happen.
func at(sec int) time.Time {
	return time.Date(2015, 7, 1, 15, 0, 51+sec, 0, time.UTC)
}

// specEvent is the call_hangup of the spec's example: an inbound call that
// went to menu 99 and was ended by the caller four seconds later.
func specEvent() cdr.Event {
	const id = "f615986c-2001-11e5-bdee-6599352d46ce"
	return cdr.Event{
		Type:        cdr.CallHangup,
		CallID:      id,
		Caller:      "90532000000",
		Callee:      "908508850000",
		Direction:   cdr.Inbound,
		Time:        time.UnixMicro(1435762855286302),
		HangupCause: "NORMAL_CLEARING",
		CDR: &cdr.Record{
			UUID:        id,
			CallType:    "voice",
			Direction:   cdr.Inbound,
			Caller:      "905326200000",
			Callee:      "908508850000",
			CallTime:    at(0),
			AnswerTime:  at(0),
			HangupTime:  at(4),
			HangupCause: "NORMAL_CLEARING",
			Disposition: "recv_bye",
			Callflow: []cdr.Step{
				{Callee: "908508850000", Start: at(0), Redirection: cdr.RedirectedToMenu, Target: "99"},
				{Callee: "99", Start: at(0), Answer: at(0), Hangup: at(4), Redirection: cdr.ConnectingToMenu},
			},
		},
		TalkDuration: 4,
		HangupDetail: "recv_bye",
	}
}

// queue is a group with no digits, named the way receivers' parsers find
// hardest: form delimiters, a plus, spaces, brackets and Turkish letters.
const queue = "Satış + destek & co=1 [vip]"

// trickyEvent is an event of type typ from an anonymous caller that went
// through a menu to a named queue and was answered there: a 3-step callflow
// with nulls, strings where numbers usually are, and a 15-digit callee.
func trickyEvent(typ cdr.EventType) cdr.Event {
	ev := cdr.Event{
		Type:        typ,
		CallID:      "1700000000.42",
		Seq:         1,
		Number:      "908508850000",
		Caller:      "anonymous",
		Callee:      "908508850000123",
		Direction:   cdr.Inbound,
		Time:        at(0).Add(86820 * time.Microsecond),
		Destination: queue,
	}
	if typ != cdr.CallHangup && typ != cdr.MissingCall {
		return ev
	}
	ev.HangupCause = "NORMAL_CLEARING"
	ev.TalkDuration = 39
	ev.HangupDetail = "send_bye"
	ev.ResultDisposition = "SUCCESS"
	ev.CDR = &cdr.Record{
		UUID:        ev.CallID,
		CallType:    "voice",
		Direction:   cdr.Inbound,
		Caller:      ev.Caller,
		Callee:      ev.Callee,
		CallTime:    at(0),
		AnswerTime:  at(1),
		HangupTime:  at(40),
		Recorded:    true,
		HangupCause: "NORMAL_CLEARING",
		Disposition: "send_bye",
		Callflow: []cdr.Step{
			{Callee: ev.Callee, Start: at(0), Redirection: cdr.RedirectedToMenu, Target: "99"},
			{Callee: "99", Start: at(0), Answer: at(1), Hangup: at(6), Redirection: cdr.RedirectedToGroup, Target: queue},
			{Callee: queue, Start: at(6), Answer: at(9), Hangup: at(40), Redirection: cdr.ConnectingToGroup},
		},
		Reconciled: true,
	}
	return ev
}

func int64p(n int64) *int64 { return &n }

// fullOptions sets every optional field.
func fullOptions(loc *time.Location) Options {
	return Options{
		Location:  loc,
		DomainID:  int64p(7),
		AccountID: int64p(1234567890123),
		CDRURL:    "http://kanca.example/v1/calls/1700000000.42?view=full&lang=tr",
	}
}

func encode(t testing.TB, f Format, ev cdr.Event, o Options) []byte {
	t.Helper()
	body, _, err := Encode(f, ev, o)
	if err != nil {
		t.Fatalf("Encode(%s, %s): %v", f, ev.Type, err)
	}
	return body
}

// pair is one leaf of an event as a PHP receiver sees it in $_POST.
type pair struct{ key, value string }

// flattenJSON turns a JSON body into the leaves PHP's form parser would give
// for the same data, in document order: keys in bracket notation, scalars
// as PHP casts them to strings (integers in decimal, true "1", false "0",
// null ""). Empty lists and objects have no leaves, as a form cannot spell
// them.
func flattenJSON(body []byte) ([]pair, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var out []pair
	if err := flattenValue(d, "", &out); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the top-level value: %v", err)
	}
	return out, nil
}

func flattenValue(d *json.Decoder, key string, out *[]pair) error {
	tok, err := d.Token()
	if err != nil {
		return err
	}
	child := func(name string) string {
		if key == "" {
			return name
		}
		return key + "[" + name + "]"
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch tok {
		case '{':
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return err
				}
				if err := flattenValue(d, child(k.(string)), out); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; d.More(); i++ {
				if err := flattenValue(d, child(strconv.Itoa(i)), out); err != nil {
					return err
				}
			}
		}
		_, err := d.Token() // the closing delimiter
		return err
	case string:
		*out = append(*out, pair{key, tok})
	case json.Number:
		*out = append(*out, pair{key, tok.String()})
	case bool:
		v := "0"
		if tok {
			v = "1"
		}
		*out = append(*out, pair{key, v})
	case nil:
		*out = append(*out, pair{key, ""})
	default:
		return fmt.Errorf("unexpected JSON token %v", tok)
	}
	return nil
}

// checkFormMirrorsJSON encodes ev both ways and checks that the form body,
// read by net/url as a PHP receiver's parser would read it, holds exactly
// the leaves of the JSON body, once each, in the JSON's order.
func checkFormMirrorsJSON(t *testing.T, ev cdr.Event, o Options) {
	t.Helper()
	jsonBody := encode(t, JSON, ev, o)
	formBody := encode(t, Form, ev, o)
	// A GET hook's query is made from the stored JSON: byte for byte the form.
	if got, err := FormFromJSON(jsonBody); err != nil || string(got) != string(formBody) {
		t.Fatalf("FormFromJSON = %q, %v\nwant %q", got, err, formBody)
	}
	if !json.Valid(jsonBody) {
		t.Fatalf("invalid JSON: %s", jsonBody)
	}
	want, err := flattenJSON(jsonBody)
	if err != nil {
		t.Fatalf("flatten %s: %v", jsonBody, err)
	}
	values, err := url.ParseQuery(string(formBody))
	if err != nil {
		t.Fatalf("ParseQuery(%s): %v", formBody, err)
	}
	if len(values) != len(want) {
		t.Errorf("form has %d keys, JSON %d leaves\nform: %s\njson: %s", len(values), len(want), formBody, jsonBody)
	}
	for _, p := range want {
		if got := values[p.key]; len(got) != 1 || got[0] != p.value {
			t.Errorf("form %s = %q, JSON says %q", p.key, got, p.value)
		}
	}
	got, err := formPairs(formBody)
	if err != nil {
		t.Fatal(err)
	}
	for i := range min(len(got), len(want)) {
		if got[i].key != want[i].key {
			t.Errorf("form key %d is %s, JSON has %s there", i, got[i].key, want[i].key)
			break
		}
	}
}

// formPairs reads a form body in order, which url.Values forgets.
func formPairs(body []byte) ([]pair, error) {
	var out []pair
	for field := range strings.SplitSeq(string(body), "&") {
		k, v, _ := strings.Cut(field, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("form field %q: %w", field, err)
		}
		out = append(out, pair{key, value})
	}
	return out, nil
}
