package templates

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/kanca/kanca/cdr"
)

// Funcs documents the functions a template has besides text/template's
// builtins (and, or, not, eq, ne, lt, le, gt, ge, len, index, slice,
// print, printf, println, urlquery, js, html, call).
var Funcs = map[string]string{
	"national":      `national NUMBER: a phone number as people at home write it ("0532 123 45 67"); anything that is not a phone number (an extension, a menu) unchanged`,
	"international": `international NUMBER: a phone number in international form ("+90 532 123 45 67")`,
	"e164":          `e164 NUMBER: a phone number as "+905321234567"`,
	"time":          `time LAYOUT VALUE: a time of the event (timestamp, or a cdr time) in the hook's time zone, in Go's layout ("15:04", "02.01.2006 15:04"); empty for null`,
	"duration":      `duration SECONDS: a duration for people in the hook's language ("1 min 5 s", "1 dk 5 sn")`,
	"json":          `json VALUE: VALUE as JSON (a string quoted and escaped), to put into a JSON body`,
	"param":         `param NAME: the hook's parameter NAME (--param NAME=VALUE); an error if it is not set`,
	"url":           `url: the hook's URL (--url)`,
	"answered":      `answered EVENT: who answered a call_hangup (the last answered step of its callflow), empty if nobody`,
	"kind":          `kind EVENT_TYPE: the canonical name of an event_type in any spelling ("incoming_call_extension" -> "call_init_extension")`,
	"include":       `include "NAME" DATA: the output of the defined template NAME as a string, to pass on to json, urlquery or truncate`,
	"truncate":      `truncate N TEXT: TEXT cut to at most N characters, ending in "…" when cut`,
}

type funcs struct {
	env  Env
	root *template.Template // set once parsed, for include
}

func newFuncs(env Env) *funcs {
	if env.Location == nil {
		env.Location = time.UTC
	}
	return &funcs{env: env}
}

func (f *funcs) funcMap() template.FuncMap {
	return template.FuncMap{
		"national":      func(v any) string { return phone(v, phonenumbers.NATIONAL) },
		"international": func(v any) string { return phone(v, phonenumbers.INTERNATIONAL) },
		"e164":          func(v any) string { return phone(v, phonenumbers.E164) },
		"time":          f.time,
		"duration":      f.duration,
		"json":          toJSON,
		"param":         f.param,
		"url":           func() string { return f.env.URL },
		"answered":      answered,
		"kind":          kind,
		"include":       f.include,
		"truncate":      truncate,
	}
}

// text is what a JSON value reads as: a number as written, null as "".
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return fmt.Sprint(v)
}

// phone formats a number kanca sends in international form without +.
// Short numbers and names (extensions, menus, "anonymous") are not phone
// numbers and stay as they are.
func phone(v any, f phonenumbers.PhoneNumberFormat) string {
	s := text(v)
	if len(s) < 8 || !allDigits(s) {
		return s
	}
	n, err := phonenumbers.Parse("+"+s, "")
	if err != nil || !phonenumbers.IsPossibleNumber(n) {
		return s
	}
	return phonenumbers.Format(n, f)
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// time reads the body's two shapes of time: microseconds since the epoch
// (timestamp) and ISO-8601 (the CDR's).
func (f *funcs) time(layout string, v any) (string, error) {
	var t time.Time
	switch v := v.(type) {
	case nil:
		return "", nil
	case json.Number:
		us, err := v.Int64()
		if err != nil {
			return "", fmt.Errorf("time: %q is not microseconds since the epoch", v)
		}
		t = time.UnixMicro(us)
	case string:
		if v == "" {
			return "", nil
		}
		var err error
		if t, err = time.Parse(time.RFC3339, v); err != nil {
			return "", fmt.Errorf("time: %q is not an ISO-8601 time", v)
		}
	default:
		return "", fmt.Errorf("time: %v is not a time", v)
	}
	return t.In(f.env.Location).Format(layout), nil
}

var units = map[string][3]string{
	"en": {"h", "min", "s"},
	"tr": {"sa", "dk", "sn"},
}

func (f *funcs) duration(v any) (string, error) {
	secs, err := strconv.ParseInt(text(v), 10, 64)
	if err != nil || secs < 0 {
		return "", fmt.Errorf("duration: %q is not a number of seconds", text(v))
	}
	u, ok := units[f.env.Lang]
	if !ok {
		u = units["en"]
	}
	h, m, s := secs/3600, secs%3600/60, secs%60
	var parts []string
	if h > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", h, u[0]))
	}
	if m > 0 {
		parts = append(parts, fmt.Sprintf("%d %s", m, u[1]))
	}
	if s > 0 || len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d %s", s, u[2]))
	}
	return strings.Join(parts, " "), nil
}

// toJSON leaves <, > and & as they are: the bodies are not HTML, and a
// Slack link <url|text> should read as written.
func toJSON(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("json: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func (f *funcs) param(name string) (string, error) {
	v, ok := f.env.Params[name]
	if !ok {
		return "", fmt.Errorf("param %q is not set: give it with --param %s=VALUE", name, name)
	}
	return v, nil
}

// answered reads the callflow for its last answered step: after a menu
// or a forward, the one who took the call.
func answered(ev any) string {
	m, _ := ev.(map[string]any)
	rec, _ := m["cdr"].(map[string]any)
	flow, _ := rec["callflow"].([]any)
	for i := len(flow) - 1; i >= 0; i-- {
		step, _ := flow[i].(map[string]any)
		if step["answer_time"] != nil {
			return text(step["callee"])
		}
	}
	return ""
}

func kind(v any) (string, error) {
	t, err := cdr.ParseEventType(text(v))
	if err != nil {
		return "", fmt.Errorf("kind: %w", err)
	}
	return string(t), nil
}

func (f *funcs) include(name string, data any) (string, error) {
	if f.root == nil {
		return "", errors.New("include: not ready")
	}
	w := &capped{max: MaxBody}
	if err := f.root.ExecuteTemplate(w, name, data); err != nil {
		return "", err
	}
	return w.b.String(), nil
}

func truncate(n int, s string) string {
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
