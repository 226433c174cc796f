package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

func TestValidate(t *testing.T) {
	good := Hook{Number: pbx, URL: "https://crm.example/hook", Events: []string{"call_init"}, Format: "json", Timeout: time.Second}
	cases := []struct {
		name string
		mod  func(*Hook)
		err  string // "" valid
	}{
		{"good", func(*Hook) {}, ""},
		{"http", func(h *Hook) { h.URL = "http://10.0.0.1:8080/x?y=1" }, ""},
		{"form spelled out", func(h *Hook) { h.Format = "x-www-form-urlencoded" }, ""},
		{"alias spelling", func(h *Hook) { h.Events = []string{"incoming_call_extension", "call_init_manu"} }, ""},
		{"whsec secret", func(h *Hook) { h.Secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" }, ""},
		{"plain secret", func(h *Hook) { h.Secret = "correct horse" }, ""},
		{"no number", func(h *Hook) { h.Number = "" }, "number is required"},
		{"plus inside", func(h *Hook) { h.Number = "90+8508850000" }, "must be digits only"},
		{"dashes", func(h *Hook) { h.Number = "0850-885" }, "must be digits only"},
		{"national form", func(h *Hook) { h.Number = "0850 885 00 00" }, `number "08508850000" is in national form: write it in international form, the country code in place of the 0 (in Turkey, 908508850000)`},
		{"the 00 of an international call", func(h *Hook) { h.Number = "00908508850000" }, "write it without it, as 908508850000"},
		{"short number with a 0", func(h *Hook) { h.Number = "0100" }, ""},
		{"no url", func(h *Hook) { h.URL = "" }, "url is required"},
		{"relative url", func(h *Hook) { h.URL = "/hook" }, "must be absolute http or https"},
		{"ftp url", func(h *Hook) { h.URL = "ftp://x/y" }, "must be absolute http or https"},
		{"no host", func(h *Hook) { h.URL = "http:///x" }, "has no host"},
		{"url credentials", func(h *Hook) { h.URL = "https://bob:hunter2@x/y" }, "must not carry credentials"},
		{"unknown event", func(h *Hook) { h.Events = []string{"call_init", "call_ringing"} }, `unknown event "call_ringing"`},
		{"twice", func(h *Hook) { h.Events = []string{"call_init_extension", "incoming_call_extension"} }, "given twice"},
		{"no events", func(h *Hook) { h.Events = nil }, "at least one event"},
		{"format", func(h *Hook) { h.Format = "xml" }, `unknown format "xml"`},
		{"password alone", func(h *Hook) { h.Password = "hunter2" }, "a password needs a user"},
		{"bad whsec", func(h *Hook) { h.Secret = "whsec_***" }, "not base64"},
		{"timeout", func(h *Hook) { h.Timeout = time.Hour }, "timeout 1h0m0s out of range"},
		{"max in flight", func(h *Hook) { h.MaxInFlight = MaxMaxInFlight + 1 }, "max in flight 1025 out of range [1, 1024]"},
		{"negative max in flight", func(h *Hook) { h.MaxInFlight = -1 }, "max in flight -1 out of range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := good
			c.mod(&h)
			err := h.Validate()
			if c.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, c.err)
			assert.NotContains(t, err.Error(), "hunter2")
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestValidateNormalises(t *testing.T) {
	h := Hook{Number: pbx, URL: "http://x/", Events: []string{" Incoming_Call_Extension "}, Format: "FORM", Timeout: time.Second}
	require.NoError(t, h.Validate())
	assert.Equal(t, []string{"incoming_call_extension"}, h.Events)
	assert.Equal(t, formats.Form, h.Format)

	// Numbers as they are written: the + and the spaces go.
	for _, n := range []string{"+908508850000", "+90 850 885 00 00", " 908508850000 "} {
		h := Hook{Number: n, URL: "http://x/", Timeout: time.Second}.withDefaults()
		require.NoError(t, h.Validate(), n)
		assert.Equal(t, pbx, h.Number, n)
	}
}

func TestMatches(t *testing.T) {
	h := Hook{Number: pbx, Enabled: true, Events: []string{"incoming_call_extension", "call_hangup"}}
	assert.True(t, h.Matches(event("c", 1, cdr.CallInitExtension)))
	assert.False(t, h.Matches(event("c", 1, cdr.CallInit)), "not subscribed")
	name, _ := h.EventName(cdr.CallInitExtension)
	assert.Equal(t, "incoming_call_extension", name)
	menu := Hook{Number: pbx, Enabled: true, Events: []string{"call_init_manu"}}
	name, ok := menu.EventName(cdr.CallInitMenu)
	assert.True(t, ok)
	assert.Equal(t, "call_init_menu", name, "the spec's misspelling subscribes, but the event goes out spelt right")
	other := event("c", 1, cdr.CallInitExtension)
	other.Number = "908508850001"
	assert.False(t, h.Matches(other), "other number")
	h.Enabled = false
	assert.True(t, h.Matches(event("c", 1, cdr.CallInitExtension)), "disabled: held for it")
}

func TestCredentialsNeverPrinted(t *testing.T) {
	h := Hook{ID: 3, Number: pbx, URL: "http://x/", User: "bob", Password: "hunter2", Secret: "whsec_c2VjcmV0LXNlY3JldA=="}
	js, err := json.Marshal(h)
	require.NoError(t, err)
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "hook", h)
	for _, out := range []string{string(js), buf.String(), h.String()} {
		assert.NotContains(t, out, "hunter2")
		assert.NotContains(t, out, "c2VjcmV0")
	}
	assert.Contains(t, string(js), `"password":"****"`)
	assert.Contains(t, string(js), `"timeout":"0s"`)
	assert.Equal(t, "hunter2", h.Password, "Masked must not alter the original")
}

func TestHookCRUD(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h := addHook(t, s, Hook{URL: "http://127.0.0.1:1/a"})
	assert.Equal(t, AllEvents(), h.Events)
	assert.Equal(t, formats.JSON, h.Format)
	assert.Equal(t, DefaultTimeout, h.Timeout)
	assert.True(t, h.Enabled)

	_, err := s.AddHook(ctx, Hook{Number: "12a", URL: "http://x/"})
	require.ErrorContains(t, err, "digits only")

	url, pw, dom := "https://127.0.0.1:2/b", "pw", int64(7)
	got, err := s.UpdateHook(ctx, h.ID, HookUpdate{URL: &url, Password: &pw, User: new(string), DomainID: &dom})
	require.ErrorContains(t, err, "a password needs a user", "validated after applying")
	user := "bob"
	got, err = s.UpdateHook(ctx, h.ID, HookUpdate{URL: &url, Password: &pw, User: &user, DomainID: &dom})
	require.NoError(t, err)
	reread, err := s.GetHook(ctx, h.ID)
	require.NoError(t, err)
	assert.Equal(t, url, reread.URL)
	assert.Equal(t, "bob", reread.User)
	assert.Equal(t, int64(7), *reread.DomainID)
	assert.Equal(t, h.Events, reread.Events, "untouched fields stay")
	assert.Equal(t, got.URL, reread.URL)

	require.NoError(t, s.SetEnabled(ctx, h.ID, false))
	reread, _ = s.GetHook(ctx, h.ID)
	assert.False(t, reread.Enabled)

	require.NoError(t, s.RemoveHook(ctx, h.ID))
	_, err = s.GetHook(ctx, h.ID)
	assert.True(t, isNotFound(err))
	assert.True(t, isNotFound(s.RemoveHook(ctx, h.ID)))
	assert.True(t, isNotFound(s.SetEnabled(ctx, 99, true)))
	_, err = s.UpdateHook(ctx, 99, HookUpdate{})
	assert.True(t, isNotFound(err))
}

func TestCallbackHookMatchesItsCallsOnly(t *testing.T) {
	url := "https://crm.example/cb"
	h := Hook{Number: CallbackPrefix + url, URL: url}.withDefaults()
	require.NoError(t, h.Validate())
	h.Enabled = true
	ev := cdr.Event{Type: cdr.CallInit, Number: "908508850000"}
	assert.False(t, h.Matches(ev), "a call without the callback")
	ev.Autodial = &cdr.Autodial{CallbackURL: &url}
	assert.True(t, h.Matches(ev))
	other := "https://other.example/cb"
	ev.Autodial.CallbackURL = &other
	assert.False(t, h.Matches(ev), "another request's callback")
	bad := Hook{Number: CallbackPrefix + other, URL: url}.withDefaults()
	assert.Error(t, bad.Validate(), "a callback hook posts to its own URL only")
}
