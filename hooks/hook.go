// Package hooks keeps the webhooks an admin binds to PBX numbers, turns call
// events into durable deliveries (the outbox) and sends them (the
// dispatcher), at least once and in order per call and hook.
package hooks

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/templates"
)

// DefaultTimeout bounds one request to a hook when the hook sets none. The
// Standard Webhooks guidance is 15 to 30 s.
const DefaultTimeout = 15 * time.Second

// MaxTimeout keeps a misconfigured hook from pinning a worker for ever.
const MaxTimeout = 5 * time.Minute

// DefaultMaxInFlight bounds the requests open to a hook at once when the
// hook sets none; MaxMaxInFlight is the most a hook may set. The
// dispatcher starts below the bound and grows toward it while the
// receiver keeps up (see hookQueue.limit).
const (
	DefaultMaxInFlight = 128
	MaxMaxInFlight     = 1024
)

// Mask replaces every password and secret in output, errors and logs.
const Mask = "****"

// secretPrefix marks a Standard Webhooks secret, whose rest is base64.
const secretPrefix = "whsec_"

// ErrNotFound is wrapped by lookups of hooks and deliveries that do not exist.
var ErrNotFound = errors.New("not found")

// Hook is one webhook bound to a PBX number.
type Hook struct {
	ID     int64          `json:"id"`
	Number string         `json:"number"`
	URL    string         `json:"url"`
	Events []string       `json:"events"` // in the spelling the admin asked for: that spelling is sent
	Format formats.Format `json:"format"`

	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Secret   string `json:"secret,omitempty"` // Standard Webhooks signing secret

	DomainID  *int64 `json:"domain_id,omitempty"`
	AccountID *int64 `json:"account_id,omitempty"`

	// The request: method, and a preset or templates (see request.go).
	Method    string            `json:"method,omitempty"` // POST (default), GET or PUT
	Preset    string            `json:"preset,omitempty"`
	Lang      string            `json:"lang,omitempty"` // the preset's language: tr (default) or en
	TZ        string            `json:"tz,omitempty"`   // IANA zone of the templates' times; "": the machine's
	Templates templates.Set     `json:"templates,omitzero"`
	Params    map[string]string `json:"params,omitempty"` // read by templates with param

	Enabled bool `json:"enabled"`
	// DisabledReason says why kanca (not the admin) disabled the hook.
	DisabledReason     string        `json:"disabled_reason,omitempty"`
	Timeout            time.Duration `json:"-"`
	InsecureSkipVerify bool          `json:"insecure_skip_verify"`
	// MaxInFlight bounds the requests open to the hook at once; a call's
	// own events still go one after another.
	MaxInFlight int `json:"max_in_flight"`

	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`

	// Held is how many of its events wait for it to be enabled; filled by
	// ListHooks and GetHook only.
	Held int `json:"held"`
}

// Masked returns a copy safe to print: credentials are replaced by Mask.
func (h Hook) Masked() Hook {
	if h.Password != "" {
		h.Password = Mask
	}
	if h.Secret != "" {
		h.Secret = Mask
	}
	h.Events = append([]string(nil), h.Events...)
	if len(h.Params) > 0 {
		ps := make(map[string]string, len(h.Params))
		for k, v := range h.Params {
			if secretParam(k) {
				v = Mask
			}
			ps[k] = v
		}
		h.Params = ps
	}
	return h
}

// secretParam reports a parameter that holds a credential (an API key, a
// token), masked wherever a hook is printed.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	return strings.Contains(n, "key") || strings.Contains(n, "token") || strings.Contains(n, "secret") || strings.Contains(n, "password")
}

// MarshalJSON masks credentials, so that no JSON view of a hook (CLI
// output, an API) can leak them, and prints the timeout as a duration.
func (h Hook) MarshalJSON() ([]byte, error) {
	type plain Hook
	return json.Marshal(struct {
		plain
		Timeout string `json:"timeout"`
	}{plain(h.Masked()), h.Timeout.String()})
}

// LogValue keeps credentials out of logs whatever the handler prints.
func (h Hook) LogValue() slog.Value {
	return slog.GroupValue(
		slog.Int64("id", h.ID),
		slog.String("number", h.Number),
		slog.String("url", redactURL(h.URL)),
	)
}

// String keeps credentials out of %v in errors.
func (h Hook) String() string {
	return fmt.Sprintf("hook %d (%s -> %s)", h.ID, h.Number, redactURL(h.URL))
}

// EventName returns the spelling this hook asked for t, and whether it
// subscribes to t at all.
func (h Hook) EventName(t cdr.EventType) (string, bool) {
	for _, e := range h.Events {
		if et, err := cdr.ParseEventType(e); err == nil && et == t {
			return cdr.SendName(e), true
		}
	}
	return "", false
}

// Matches reports whether ev is for h: its number, an event it asked for.
// A disabled hook matches too: its events are held for it.
func (h Hook) Matches(ev cdr.Event) bool {
	if h.Number != ev.Number && h.Number != callbackOf(ev) {
		return false
	}
	_, ok := h.EventName(ev.Type)
	return ok
}

// AllEvents is the default event set of a new hook.
func AllEvents() []string {
	out := make([]string, len(cdr.EventTypes))
	for i, t := range cdr.EventTypes {
		out[i] = string(t)
	}
	return out
}

// withDefaults fills what a new hook may leave out.
func (h Hook) withDefaults() Hook {
	if len(h.Events) == 0 {
		h.Events = AllEvents()
		if p, err := templates.LookupPreset(h.Preset, h.Lang, h.Method); err == nil && p.Events != nil {
			h.Events = append([]string(nil), p.Events...)
		}
	}
	if h.Method == "" {
		h.Method = http.MethodPost
	}
	if h.Preset != "" && h.Lang == "" {
		h.Lang = templates.Langs[0]
	}
	if h.Format == "" {
		h.Format = formats.JSON
	}
	if h.Timeout == 0 {
		h.Timeout = DefaultTimeout
	}
	return h
}

// plainNumber is a number as hooks store it: +90 850 885 00 00, as
// numbers are written, is 908508850000.
func plainNumber(number string) string {
	return strings.TrimPrefix(strings.Join(strings.Fields(number), ""), "+")
}

// longestExtension is how many digits an extension has at most, as the
// tracker counts them by default.
var longestExtension = cdr.DefaultConfig().ExtensionMaxDigits

// nationalForm says what is wrong with a PBX number written as it is dialled
// from inside its country (0850...) or with the 00 of an international call:
// kanca sends, and matches hooks by, numbers in international form, so such
// a hook would never receive a call. Short numbers are left alone: kanca
// sends an extension as dialled.
func nationalForm(number string) string {
	switch {
	case len(number) <= longestExtension || number[0] != '0':
		return ""
	case strings.HasPrefix(number, "00"):
		return fmt.Sprintf("number %q has the 00 of an international call: write it without it, as %s", number, number[2:])
	}
	return fmt.Sprintf("number %q is in national form: write it in international form, the country code in place of the 0 (in Turkey, 90%s)", number, number[1:])
}

// Validate checks a hook and normalises its event spellings and format. The
// error is one line naming every problem, and never contains a credential.
func (h *Hook) Validate() error {
	var probs []string
	h.Number = plainNumber(h.Number)
	if h.Number == "" {
		probs = append(probs, "number is required")
	} else if !validNumber(h.Number, h.URL) {
		probs = append(probs, fmt.Sprintf("number %q must be digits only (international form without +)", h.Number))
	} else if p := nationalForm(h.Number); p != "" {
		probs = append(probs, p)
	}
	if err := checkURL(h.URL); err != nil {
		probs = append(probs, err.Error())
	}
	evs, err := normaliseEvents(h.Events)
	if err != nil {
		probs = append(probs, err.Error())
	} else {
		h.Events = evs
	}
	if f, err := formats.ParseFormat(string(h.Format)); err != nil {
		probs = append(probs, err.Error())
	} else {
		h.Format = f
	}
	if h.Password != "" && h.User == "" {
		probs = append(probs, "a password needs a user")
	}
	if strings.ContainsRune(h.User, ':') {
		probs = append(probs, "user must not contain ':' (HTTP Basic forbids it)")
	}
	if strings.ContainsFunc(h.User, unicode.IsControl) {
		// It would garble every listing it is printed in.
		probs = append(probs, "user must not contain control characters")
	}
	if _, err := signingKey(h.Secret); err != nil {
		probs = append(probs, err.Error())
	}
	if h.Timeout <= 0 || h.Timeout > MaxTimeout {
		probs = append(probs, fmt.Sprintf("timeout %s out of range (0, %s]", h.Timeout, MaxTimeout))
	}
	if h.MaxInFlight == 0 {
		// Not set: hooks stored before the setting existed have the
		// default too.
		h.MaxInFlight = DefaultMaxInFlight
	}
	if h.MaxInFlight < 1 || h.MaxInFlight > MaxMaxInFlight {
		probs = append(probs, fmt.Sprintf("max in flight %d out of range [1, %d]", h.MaxInFlight, MaxMaxInFlight))
	}
	if len(probs) == 0 {
		// The templates are rendered against the events, so the events
		// and the format must be right first.
		if err := h.validateRequest(); err != nil {
			probs = append(probs, err.Error())
		}
	}
	if len(probs) > 0 {
		return fmt.Errorf("invalid hook: %s", strings.Join(probs, "; "))
	}
	return nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func checkURL(raw string) error {
	if raw == "" {
		return errors.New("url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url %q does not parse", redactURL(raw))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url %q must be absolute http or https", redactURL(raw))
	}
	if u.Host == "" {
		return fmt.Errorf("url %q has no host", redactURL(raw))
	}
	if u.User != nil {
		// Credentials in the URL would be printed wherever the URL is.
		return errors.New("url must not carry credentials: use --user and --password-env")
	}
	return nil
}

// redactURL masks the userinfo of a URL for messages and logs. A URL that
// does not parse may still carry a password, so everything before its last
// '@' goes too.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.LastIndexByte(raw, '@'); i >= 0 {
			return Mask + raw[i:]
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	u.User = url.User(Mask)
	return u.String()
}

// normaliseEvents lower-cases the spellings and refuses unknown or repeated
// events; two spellings of one event would send it twice.
func normaliseEvents(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("at least one event is required")
	}
	seen := map[cdr.EventType]string{}
	out := make([]string, 0, len(in))
	for _, e := range in {
		e = strings.ToLower(strings.TrimSpace(e))
		t, err := cdr.ParseEventType(e)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[t]; ok {
			return nil, fmt.Errorf("event %s given twice (as %s and %s)", t, prev, e)
		}
		seen[t] = e
		out = append(out, e)
	}
	return out, nil
}

// signingKey returns the HMAC key of a secret: a whsec_ secret is base64 as
// Standard Webhooks serialises it; any other secret is used as its bytes.
func signingKey(secret string) ([]byte, error) {
	if secret == "" {
		return nil, nil
	}
	rest, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return []byte(secret), nil
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil || len(key) == 0 {
		return nil, errors.New("secret starts with whsec_ but the rest is not base64")
	}
	return key, nil
}
