package hooks

import (
	"context"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

// FuzzHook feeds what an admin types into `kanca hooks add` through the
// validation and the store. A hook accepted is well-formed and stored as it
// was validated; one refused gets a one-line error that does not depend on
// (so cannot leak) its password or secret.
func FuzzHook(f *testing.F) {
	type seed struct {
		number, url, events, format, user, password, secret string
		timeoutMS                                           int64
		insecure                                            bool
	}
	for _, s := range []seed{
		{pbx, "https://crm.example.com/kanca", "", "json", "", "", "", 0, false},
		{pbx, "https://crm.example.com/kanca", "call_init,call_hangup,missing_call", "form", "crm", "hunter2", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 15000, false},
		{"908508850001", "http://10.0.0.5/hook.php", "call_init,incoming_call_extension,call_hangup", "x-www-form-urlencoded", "", "", "correct horse", 30000, true},
		{pbx, "http://[::1]:8080/a?b=c#d", " Incoming_Call_Group ,call_init_manu", "FORM", "u", "", "", 1, false},
		{"+908508850000", "crm.example/hook", "call_ringing", "xml", "a:b", "pw", "whsec_***", -1, false},
		{"0850-885", "https://bob:hunter2@x/y", "call_init,call_init", "", "", "hunter2", "", 600000, false},
		{"", "http://u:pw%zz@x/", ",", "json", "bad\nuser", "", "whsec_", 0, false},
		{pbx, "ftp://x/y", "call_init_extension,incoming_call_extension", "json", "", "", "whsec_c2VjcmV0LXNlY3JldA==", 300001, true},
		{"123", "http:///x", "fax_init", "json", "", "", "", 5, false},
	} {
		f.Add(s.number, s.url, s.events, s.format, s.user, s.password, s.secret, s.timeoutMS, s.insecure)
	}
	store, err := Open(filepath.Join(f.TempDir(), "kanca.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { store.Close() })
	ctx := context.Background()

	f.Fuzz(func(t *testing.T, number, rawURL, events, format, user, password, secret string, timeoutMS int64, insecure bool) {
		in := Hook{Number: number, URL: rawURL, Format: formats.Format(format), User: user,
			Password: password, Secret: secret, Timeout: time.Duration(timeoutMS) * time.Millisecond,
			InsecureSkipVerify: insecure}
		if events != "" {
			in.Events = strings.Split(events, ",")
		}
		h := in.withDefaults()
		verr := h.Validate()

		// The error is the same whatever the credentials say, as long as
		// they are as valid as before: no credential reaches it.
		other := in
		other.Password = stand(password, "some-other-password")
		switch {
		case secret == "":
		case hasBadSecret(secret):
			other.Secret = "whsec_!"
		default:
			other.Secret = "some-other-secret"
		}
		o := other.withDefaults()
		if oerr := o.Validate(); errText(oerr) != errText(verr) {
			t.Fatalf("the error depends on the credentials:\n%v\n%v", verr, oerr)
		}

		stored, aerr := store.AddHook(ctx, in)
		if verr != nil {
			msg := verr.Error()
			if !strings.HasPrefix(msg, "invalid hook: ") || len(msg) <= len("invalid hook: ") || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("not a one-line message naming the problem: %q", msg)
			}
			if aerr == nil || aerr.Error() != msg {
				t.Fatalf("AddHook disagrees with Validate: %v vs %v", aerr, verr)
			}
			return
		}
		checkValid(t, h)
		again := h
		again.Events = append([]string(nil), h.Events...)
		if err := again.Validate(); err != nil || strings.Join(again.Events, ",") != strings.Join(h.Events, ",") || again.Format != h.Format {
			t.Fatalf("validation is not idempotent: %v, %v -> %v", err, h.Events, again.Events)
		}
		if aerr != nil {
			t.Fatalf("valid hook refused by the store: %v", aerr)
		}
		got, err := store.GetHook(ctx, stored.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := h
		want.ID, want.Enabled = stored.ID, true
		want.Created, want.Updated = got.Created, got.Updated
		if !sameHook(got, want) {
			t.Fatalf("stored hook differs:\n got %#v\nwant %#v", got, want)
		}
		if err := store.RemoveHook(ctx, stored.ID); err != nil {
			t.Fatal(err)
		}
	})
}

func stand(s, other string) string {
	if s == "" {
		return ""
	}
	return other
}

func hasBadSecret(s string) bool {
	_, err := signingKey(s)
	return err != nil
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkValid states what a valid hook is.
func checkValid(t *testing.T, h Hook) {
	t.Helper()
	if !digits(h.Number) {
		t.Fatalf("number %q accepted", h.Number)
	}
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		t.Fatalf("url %q accepted", h.URL)
	}
	if len(h.Events) == 0 {
		t.Fatal("no events accepted")
	}
	seen := map[cdr.EventType]bool{}
	for _, e := range h.Events {
		et, err := cdr.ParseEventType(e)
		if err != nil || e != strings.ToLower(strings.TrimSpace(e)) || seen[et] || strings.Contains(e, ",") {
			t.Fatalf("events %q accepted", h.Events)
		}
		seen[et] = true
	}
	if h.Format != formats.JSON && h.Format != formats.Form {
		t.Fatalf("format %q accepted", h.Format)
	}
	if strings.ContainsRune(h.User, ':') || strings.ContainsFunc(h.User, unicode.IsControl) || (h.Password != "" && h.User == "") {
		t.Fatalf("user %q (password set: %t) accepted", h.User, h.Password != "")
	}
	if hasBadSecret(h.Secret) {
		t.Fatal("bad secret accepted")
	}
	if h.Timeout <= 0 || h.Timeout > MaxTimeout {
		t.Fatalf("timeout %s accepted", h.Timeout)
	}
}

func sameHook(a, b Hook) bool {
	return a.ID == b.ID && a.Number == b.Number && a.URL == b.URL &&
		strings.Join(a.Events, "\x00") == strings.Join(b.Events, "\x00") && a.Format == b.Format &&
		a.User == b.User && a.Password == b.Password && a.Secret == b.Secret &&
		a.Enabled == b.Enabled && a.Timeout == b.Timeout && a.InsecureSkipVerify == b.InsecureSkipVerify &&
		a.DomainID == nil && b.DomainID == nil && a.AccountID == nil && b.AccountID == nil
}
