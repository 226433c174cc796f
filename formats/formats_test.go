package formats

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// The spec's call_hangup example must come out byte for byte. kanca's rule:
// the example's fields keep its order, and the later revision's fields
// (talk_duration, hangup_detail, result_disposition) follow cdr. So the
// output is the example, compacted, with those three fields appended before
// the final brace.
func TestSpecCallHangupExample(t *testing.T) {
	example, err := os.ReadFile("testdata/spec_call_hangup.json")
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, example); err != nil {
		t.Fatalf("compact the spec example: %v", err)
	}
	want := bytes.TrimSuffix(compact.Bytes(), []byte("}"))
	want = append(want, `,"talk_duration":4,"hangup_detail":"recv_bye","result_disposition":""}`...)

	got, ctype, err := Encode(JSON, specEvent(), Options{Location: istanbul(t)})
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "application/json" {
		t.Errorf("Content-Type = %q", ctype)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("spec example not reproduced\n got: %s\nwant: %s", got, want)
	}
}

// TestGolden pins both bodies of every event type for the tricky event with
// every option set. Run with -update to rewrite them after a deliberate change.
func TestGolden(t *testing.T) {
	loc := istanbul(t)
	for _, typ := range cdr.EventTypes {
		for _, f := range []Format{JSON, Form} {
			t.Run(string(typ)+"."+string(f), func(t *testing.T) {
				got := append(encode(t, f, trickyEvent(typ), fullOptions(loc)), '\n')
				path := filepath.Join("testdata", "golden", string(typ)+"."+string(f))
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test -run TestGolden -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs\n got: %s\nwant: %s", path, got, want)
				}
			})
		}
	}
}

// member returns the raw JSON of the member at path in body.
func member(t *testing.T, body []byte, path ...string) string {
	t.Helper()
	raw := json.RawMessage(body)
	for _, name := range path {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		var ok bool
		if raw, ok = obj[name]; !ok {
			t.Fatalf("no member %s in %s", name, body)
		}
	}
	return string(raw)
}

func TestNumbers(t *testing.T) {
	tests := []struct {
		number    string
		asStrings bool
		want      string
	}{
		{"90532000000", false, `90532000000`},
		{"123456789012345", false, `123456789012345`},
		{"999999999999999999", false, `999999999999999999`},
		{"1234567890123456789", false, `"1234567890123456789"`}, // too long for an int64 everywhere
		{"05320000000", false, `"05320000000"`},                 // the leading zero would be lost
		{"0", false, `0`},
		{"99", false, `99`},
		{"anonymous", false, `"anonymous"`},
		{"sales", false, `"sales"`},
		{"", false, `""`},
		{"+90532000000", false, `"+90532000000"`},
		{"-5", false, `"-5"`},
		{"12 34", false, `"12 34"`},
		{"١٢٣", false, `"١٢٣"`}, // digits, but not ASCII ones
		{"90532000000", true, `"90532000000"`},
		{"99", true, `"99"`},
	}
	for _, tt := range tests {
		ev := trickyEvent(cdr.CallHangup)
		ev.Caller, ev.Callee, ev.Destination = tt.number, tt.number, tt.number
		ev.CDR.Caller, ev.CDR.Callee = tt.number, tt.number
		ev.CDR.Callflow[0].Callee, ev.CDR.Callflow[0].Target = tt.number, tt.number
		body := encode(t, JSON, ev, Options{NumbersAsStrings: tt.asStrings})
		for _, path := range [][]string{{"caller"}, {"callee"}, {"cdr", "bf_caller"}, {"cdr", "bf_callee"}} {
			if got := member(t, body, path...); got != tt.want {
				t.Errorf("%q (strings %v): %s = %s, want %s", tt.number, tt.asStrings, path, got, tt.want)
			}
		}
		var flow []map[string]json.RawMessage
		if err := json.Unmarshal([]byte(member(t, body, "cdr", "callflow")), &flow); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"callee", "redirection_target"} {
			if got, ok := flow[0][name]; !ok && name == "redirection_target" && tt.number == "" {
				continue // an empty target is no target
			} else if string(got) != tt.want {
				t.Errorf("%q (strings %v): callflow[0].%s = %s, want %s", tt.number, tt.asStrings, name, flow[0][name], tt.want)
			}
		}

		ev.Type = cdr.CallInitGroup
		body = encode(t, JSON, ev, Options{NumbersAsStrings: tt.asStrings})
		if got := member(t, body, "destination"); got != tt.want {
			t.Errorf("%q (strings %v): destination = %s, want %s", tt.number, tt.asStrings, got, tt.want)
		}
	}
}

func TestTimes(t *testing.T) {
	ist := istanbul(t)
	tests := []struct {
		name string
		loc  *time.Location
		t    time.Time
		want string
	}{
		{"istanbul summer", ist, at(0), `"2015-07-01T18:00:51+03:00"`},
		{"istanbul winter 2015", ist, time.Date(2015, 1, 15, 10, 0, 0, 0, time.UTC), `"2015-01-15T12:00:00+02:00"`},
		{"istanbul since 2016", ist, time.Date(2024, 1, 15, 10, 0, 0, 0, time.UTC), `"2024-01-15T13:00:00+03:00"`},
		{"utc", time.UTC, at(0), `"2015-07-01T15:00:51+00:00"`},
		{"fraction truncated", time.UTC, at(0).Add(999 * time.Millisecond), `"2015-07-01T15:00:51+00:00"`},
		{"zero is null", ist, time.Time{}, `null`},
	}
	for _, tt := range tests {
		ev := specEvent()
		ev.CDR.CallTime = tt.t
		ev.CDR.Callflow[1].Hangup = tt.t
		body := encode(t, JSON, ev, Options{Location: tt.loc})
		if got := member(t, body, "cdr", "call_time"); got != tt.want {
			t.Errorf("%s: call_time = %s, want %s", tt.name, got, tt.want)
		}
		want := tt.want
		if want == "null" {
			want = ""
		}
		want = "hangup_time%5D=" + strings.NewReplacer(`"`, "", ":", "%3A", "+", "%2B").Replace(want) + "&"
		if form := encode(t, Form, ev, Options{Location: tt.loc}); !bytes.Contains(form, []byte("cdr%5Bcallflow%5D%5B1%5D%5B"+want)) {
			t.Errorf("%s: form lacks callflow[1][%s\n%s", tt.name, want, form)
		}
	}
}

func TestTimestamp(t *testing.T) {
	ev := trickyEvent(cdr.CallInit)
	if got, want := member(t, encode(t, JSON, ev, Options{}), "timestamp"), "1435762851086820"; got != want {
		t.Errorf("timestamp = %s, want %s", got, want)
	}
	ev.Time = time.Time{}
	if got := member(t, encode(t, JSON, ev, Options{}), "timestamp"); got != "null" {
		t.Errorf("zero timestamp = %s, want null", got)
	}
}

func TestNilLocationIsLocal(t *testing.T) {
	ev := specEvent()
	ev.CDR.CallTime = time.Date(2024, 1, 15, 10, 0, 0, 0, time.UTC)
	want := `"` + ev.CDR.CallTime.In(time.Local).Format("2006-01-02T15:04:05-07:00") + `"`
	if got := member(t, encode(t, JSON, ev, Options{}), "cdr", "call_time"); got != want {
		t.Errorf("call_time = %s, want %s", got, want)
	}
}

func TestEventName(t *testing.T) {
	ev := trickyEvent(cdr.CallInitExtension)
	o := Options{EventName: "incoming_call_extension"}
	if got := member(t, encode(t, JSON, ev, o), "event_type"); got != `"incoming_call_extension"` {
		t.Errorf("JSON event_type = %s", got)
	}
	if form := encode(t, Form, ev, o); !bytes.HasPrefix(form, []byte("event_type=incoming_call_extension&")) {
		t.Errorf("form starts %.40s", form)
	}
	if got := member(t, encode(t, JSON, ev, Options{}), "event_type"); got != `"call_init_extension"` {
		t.Errorf("canonical event_type = %s", got)
	}
}

// keys lists the member names of the JSON object at path, in order.
func keys(t *testing.T, body []byte, path ...string) []string {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(member(t, body, path...)))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	var names []string
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, k.(string))
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

func TestFieldOrderAndOmission(t *testing.T) {
	common := []string{"event_type", "caller", "callee", "uuid", "direction", "timestamp"}
	hangup := []string{"event_type", "caller", "callee", "uuid", "timestamp", "hangup_cause", "direction", "cdr",
		"talk_duration", "hangup_detail", "result_disposition"}
	ids := []string{"domain_id", "account_id"}
	cat := func(s ...[]string) []string { return slices.Concat(s...) }
	tests := []struct {
		typ  cdr.EventType
		o    Options
		want []string
	}{
		{cdr.CallInit, Options{}, common},
		{cdr.CallInit, fullOptions(nil), cat(common, ids)},
		{cdr.FaxInit, Options{CDRURL: "http://kanca.example/x"}, common},
		{cdr.CallInitExtension, Options{}, cat(common, []string{"destination"})},
		{cdr.CallInitGroup, fullOptions(nil), cat(common, []string{"destination"}, ids)},
		{cdr.CallInitMenu, Options{AccountID: int64p(0)}, cat(common, []string{"destination", "account_id"})},
		{cdr.CallHangup, Options{}, hangup},
		{cdr.CallHangup, Options{DomainID: int64p(-1)}, cat(hangup, []string{"domain_id"})},
		{cdr.MissingCall, fullOptions(nil), cat(hangup, ids, []string{"cdr_url"})},
		{cdr.MissingCall, Options{CDRURL: "http://kanca.example/x"}, cat(hangup, []string{"cdr_url"})},
	}
	for _, tt := range tests {
		body := encode(t, JSON, trickyEvent(tt.typ), tt.o)
		if got := keys(t, body); !slices.Equal(got, tt.want) {
			t.Errorf("%s %+v keys\n got %v\nwant %v", tt.typ, tt.o, got, tt.want)
		}
	}
}

func TestRecordFields(t *testing.T) {
	record := []string{"uuid", "bf_calltype", "bf_direction", "bf_caller", "bf_callee", "call_time",
		"answer_time", "hangup_time", "call_record", "hangup_cause", "sip_hangup_disposition", "callflow"}
	for _, tt := range []struct {
		reconciled, expired bool
		extra               []string
	}{
		{false, false, nil},
		{true, false, []string{"reconciled"}},
		{false, true, []string{"expired"}},
		{true, true, []string{"reconciled", "expired"}},
	} {
		ev := trickyEvent(cdr.CallHangup)
		ev.CDR.Reconciled, ev.CDR.Expired = tt.reconciled, tt.expired
		body := encode(t, JSON, ev, Options{})
		if got, want := keys(t, body, "cdr"), slices.Concat(record, tt.extra); !slices.Equal(got, want) {
			t.Errorf("reconciled %v expired %v: cdr keys\n got %v\nwant %v", tt.reconciled, tt.expired, got, want)
		}
		for _, name := range tt.extra {
			if got := member(t, body, "cdr", name); got != "true" {
				t.Errorf("cdr.%s = %s", name, got)
			}
		}
	}

	// What kanca could only estimate, as flags a PHP receiver reads alike
	// from JSON and from a form.
	ev := trickyEvent(cdr.CallHangup)
	ev.CDR.Estimated = []string{"answer_time", "hangup_time"}
	if got := member(t, encode(t, JSON, ev, Options{}), "cdr", "estimated"); got != `{"answer_time":true,"hangup_time":true}` {
		t.Errorf("cdr.estimated = %s", got)
	}
	if form := string(encode(t, Form, ev, Options{})); !strings.Contains(form, "cdr%5Bestimated%5D%5Banswer_time%5D=") {
		t.Errorf("form has no cdr[estimated][answer_time]: %s", form)
	}

	body := encode(t, JSON, trickyEvent(cdr.CallHangup), Options{})
	var flow []json.RawMessage
	if err := json.Unmarshal([]byte(member(t, body, "cdr", "callflow")), &flow); err != nil {
		t.Fatal(err)
	}
	step := []string{"callee", "start_time", "answer_time", "hangup_time", "redirection"}
	wants := [][]string{append(step, "redirection_target"), append(step, "redirection_target"), step}
	if len(flow) != len(wants) {
		t.Fatalf("callflow has %d steps, want %d", len(flow), len(wants))
	}
	for i, raw := range flow {
		if got := keys(t, raw); !slices.Equal(got, wants[i]) {
			t.Errorf("callflow[%d] keys\n got %v\nwant %v", i, got, wants[i])
		}
	}
}

func TestMissingRecordAndEmptyCallflow(t *testing.T) {
	ev := trickyEvent(cdr.CallHangup)
	ev.CDR = nil
	if got := member(t, encode(t, JSON, ev, Options{}), "cdr"); got != "null" {
		t.Errorf("nil record: cdr = %s, want null", got)
	}
	if form := encode(t, Form, ev, Options{}); !bytes.Contains(form, []byte("&cdr=&talk_duration=39&")) {
		t.Errorf("nil record: form %s", form)
	}
	checkFormMirrorsJSON(t, ev, Options{})

	ev = trickyEvent(cdr.MissingCall)
	ev.CDR.Callflow = nil
	if got := member(t, encode(t, JSON, ev, Options{}), "cdr", "callflow"); got != "[]" {
		t.Errorf("no steps: callflow = %s, want []", got)
	}
	if form := encode(t, Form, ev, Options{}); bytes.Contains(form, []byte("callflow")) {
		t.Errorf("no steps: form names callflow: %s", form)
	}
	checkFormMirrorsJSON(t, ev, Options{})
}

func TestFormMirrorsJSON(t *testing.T) {
	loc := istanbul(t)
	for _, typ := range cdr.EventTypes {
		for _, o := range []Options{{Location: time.UTC}, fullOptions(loc), {NumbersAsStrings: true, EventName: "x y&z"}} {
			t.Run(string(typ), func(t *testing.T) { checkFormMirrorsJSON(t, trickyEvent(typ), o) })
		}
	}
	t.Run("spec", func(t *testing.T) { checkFormMirrorsJSON(t, specEvent(), Options{Location: loc}) })
}

func TestStrings(t *testing.T) {
	tests := []struct{ in, json, form string }{
		{"plain", `"plain"`, "plain"},
		{`q"b\s`, `"q\"b\\s"`, "q%22b%5Cs"},
		{"a\nb\tc\r\x00\x1f", `"a\nb\tc\r\u0000\u001f"`, "a%0Ab%09c%0D%00%1F"},
		{"a b+c&d=e", `"a b+c&d=e"`, "a+b%2Bc%26d%3De"},
		{"ş€😀", `"ş€😀"`, "%C5%9F%E2%82%AC%F0%9F%98%80"},
		{"a\xffb\xc3", `"a\ufffdb\ufffd"`, "a%EF%BF%BDb%EF%BF%BD"},
		{"<a>", `"<a>"`, "%3Ca%3E"},
	}
	for _, tt := range tests {
		ev := trickyEvent(cdr.CallInit)
		ev.CallID = tt.in
		if got := member(t, encode(t, JSON, ev, Options{}), "uuid"); got != tt.json {
			t.Errorf("%q: JSON %s, want %s", tt.in, got, tt.json)
		}
		if form := encode(t, Form, ev, Options{}); !bytes.Contains(form, []byte("&uuid="+tt.form+"&")) {
			t.Errorf("%q: form %s lacks uuid=%s", tt.in, form, tt.form)
		}
		var decoded string
		if err := json.Unmarshal([]byte(tt.json), &decoded); err != nil || decoded != strings.ToValidUTF8(tt.in, "\ufffd") {
			t.Errorf("%q: JSON %s decodes to %q, %v", tt.in, tt.json, decoded, err)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, _, err := Encode("xml", trickyEvent(cdr.CallInit), Options{}); err == nil || !strings.Contains(err.Error(), `"xml"`) {
		t.Errorf("unknown format: err = %v", err)
	}
	ev := trickyEvent(cdr.CallInit)
	ev.Type = "call_init_manu"
	if _, _, err := Encode(JSON, ev, Options{}); err == nil || !strings.Contains(err.Error(), "call_init_manu") {
		t.Errorf("unknown event type: err = %v", err)
	}
	if _, ctype, err := Encode(Form, ev, Options{EventName: "call_init_menu"}); err == nil || ctype != "" {
		t.Errorf("unknown event type in form: %q, %v", ctype, err)
	}
	if _, ctype, _ := Encode(Form, trickyEvent(cdr.CallInit), Options{}); ctype != "application/x-www-form-urlencoded" {
		t.Errorf("form Content-Type = %q", ctype)
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		ok   bool
	}{
		{"json", JSON, true},
		{"JSON", JSON, true},
		{" form ", Form, true},
		{"x-www-form-urlencoded", Form, true},
		{"X-WWW-Form-URLEncoded", Form, true},
		{"xml", "", false},
		{"", "", false},
		{"application/json", "", false},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "json, form, x-www-form-urlencoded") {
			t.Errorf("ParseFormat(%q) error does not list the valid names: %v", tt.in, err)
		}
	}
}

func TestAutodialFields(t *testing.T) {
	ref := "ticket 42&x"
	ev := cdr.Event{Type: cdr.CallInit, CallID: "u", Caller: "908508850000", Callee: "905321234567", Direction: "OUT",
		Time: time.Unix(1, 0), Autodial: &cdr.Autodial{AdditionalData: &ref}}
	b, _, err := Encode(JSON, ev, Options{Location: time.UTC})
	require.NoError(t, err)
	require.Contains(t, string(b), `,"autodial":true,"additional_data":"ticket 42&x","callback_url":null}`)
	f, _, err := Encode(Form, ev, Options{Location: time.UTC})
	require.NoError(t, err)
	require.Contains(t, string(f), "&autodial=1&additional_data=ticket+42%26x&callback_url=")
	ev.Autodial = nil
	b, _, err = Encode(JSON, ev, Options{Location: time.UTC})
	require.NoError(t, err)
	require.NotContains(t, string(b), "autodial", "other calls do not carry the fields")
}
