package hooks

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/templates"
)

// captured is one request as the receiver saw it.
type captured struct {
	method, query string
	body          []byte
	header        http.Header
}

func captureServer(t *testing.T) (*httptest.Server, chan captured) {
	got := make(chan captured, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- captured{r.Method, r.URL.RawQuery, b, r.Header.Clone()}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// verify checks a Standard Webhooks signature against what was received.
func verify(t *testing.T, secret string, c captured, payload []byte) {
	t.Helper()
	key, err := signingKey(secret)
	require.NoError(t, err)
	ts, err := strconv.ParseInt(c.header.Get("webhook-timestamp"), 10, 64)
	require.NoError(t, err)
	assert.Equal(t, sign(key, c.header.Get("webhook-id"), time.Unix(ts, 0), payload), c.header.Get("webhook-signature"))
}

func testSend(t *testing.T, s *Store, h Hook, typ cdr.EventType) AttemptResult {
	t.Helper()
	r, err := NewDispatcher(s, DispatchOptions{Logger: quiet}).Test(context.Background(), h, SampleEvent(typ, h.Number, fixed), Encoding{Location: time.UTC})
	require.NoError(t, err)
	require.NoError(t, r.Err)
	return r
}

// A GET hook without templates sends the event as its query string, exactly
// the form body a form hook gets; the signature covers that query.
func TestGETSendsTheFormAsQuery(t *testing.T) {
	s, _ := newStore(t)
	srv, got := captureServer(t)
	h := addHook(t, s, Hook{URL: srv.URL + "/in?src=kanca", Method: "GET", Secret: "s3cret", User: "u", Password: "p"})
	testSend(t, s, h, cdr.CallHangup)
	c := <-got
	assert.Equal(t, "GET", c.method)
	assert.Empty(t, c.body)
	form, _, err := formats.Encode(formats.Form, SampleEvent(cdr.CallHangup, h.Number, fixed), formats.Options{Location: time.UTC})
	require.NoError(t, err)
	// The sample's call id differs per call; compare everything else.
	assert.Contains(t, c.query, "src=kanca&event_type=call_hangup&caller=905320000000")
	assert.Contains(t, c.query, "cdr%5Bcallflow%5D%5B2%5D%5Bredirection%5D=CONNECTING_TO_EXTENSION")
	assert.Equal(t, len(form), len(c.query)-len("src=kanca&"))
	verify(t, "s3cret", c, []byte(c.query))
	user, pass, ok := (&http.Request{Header: c.header}).BasicAuth()
	assert.True(t, ok)
	assert.Equal(t, "u:p", user+":"+pass)
	assert.NotEmpty(t, c.header.Get("X-Kanca-Delivery"))
}

// A templated POST sends what its templates render, signed over that body,
// with kanca's own headers beside the template's.
func TestTemplatedPOST(t *testing.T) {
	s, _ := newStore(t)
	srv, got := captureServer(t)
	h := addHook(t, s, Hook{URL: srv.URL, Secret: "s3cret", TZ: "Europe/Istanbul", Lang: "en",
		Params: map[string]string{"team": "sales"},
		Templates: templates.Set{
			URL:     `{{url}}/calls/{{.uuid}}`,
			Body:    `{"who": {{json (national .caller)}}, "took": {{json (answered .)}}, "for": {{json (duration .talk_duration)}}, "at": {{json (time "15:04" .cdr.hangup_time)}}}`,
			Headers: map[string]string{"X-Team": `{{param "team"}}`},
		},
		Events: []string{"call_hangup"}})
	testSend(t, s, h, cdr.CallHangup)
	c := <-got
	assert.Equal(t, "POST", c.method)
	assert.JSONEq(t, `{"who": "0532 000 00 00", "took": "101", "for": "42 s", "at": "15:00"}`, string(c.body))
	assert.Equal(t, "application/json", c.header.Get("Content-Type"))
	assert.Equal(t, "sales", c.header.Get("X-Team"))
	assert.Equal(t, "call_hangup", c.header.Get("X-Kanca-Event"))
	verify(t, "s3cret", c, c.body)
}

// A PUT with a form hook's format and only a header template sends the
// form, converted from the JSON the templates read.
func TestPUTFormWithHeaderTemplate(t *testing.T) {
	s, _ := newStore(t)
	srv, got := captureServer(t)
	h := addHook(t, s, Hook{URL: srv.URL, Method: "PUT", Format: "form", Events: []string{"call_init"},
		Templates: templates.Set{Headers: map[string]string{"X-Caller": `{{e164 .caller}}`}}})
	testSend(t, s, h, cdr.CallInit)
	c := <-got
	assert.Equal(t, "PUT", c.method)
	assert.Equal(t, "application/x-www-form-urlencoded", c.header.Get("Content-Type"))
	assert.Contains(t, string(c.body), "event_type=call_init&caller=905320000000")
	assert.Equal(t, "+905320000000", c.header.Get("X-Caller"))
}

// Validation renders every template against a sample of each event the hook
// asked for, and says which template, where, and for which event.
func TestRequestValidation(t *testing.T) {
	base := Hook{Number: pbx, URL: "https://crm.example/h", Format: formats.JSON, Timeout: time.Second}
	for _, tc := range []struct {
		name string
		edit func(*Hook)
		want []string
	}{
		{"missing field", func(h *Hook) {
			h.Events = []string{"call_init", "call_hangup"}
			h.Templates.Body = "{\"d\": {{json .talk_duration}}}"
		}, []string{"body template", "body:1:13", `no entry for key "talk_duration"`, "sample call_init"}},
		{"not JSON", func(h *Hook) { h.Templates.Body = `text {{.uuid}}` }, []string{"did not render valid JSON"}},
		{"GET with a body", func(h *Hook) { h.Method = "GET"; h.Templates.Body = `{}` }, []string{"GET hook sends no body"}},
		{"unknown method", func(h *Hook) { h.Method = "DELETE" }, []string{`method "DELETE"`}},
		{"preset and templates", func(h *Hook) { h.Preset = "slack"; h.Templates.Body = "{}" }, []string{"not both"}},
		{"preset param", func(h *Hook) { h.Preset = "telegram" }, []string{"needs --param chat_id"}},
		{"unknown preset", func(h *Hook) { h.Preset = "hipchat" }, []string{"unknown preset"}},
		{"bad zone", func(h *Hook) { h.TZ = "Mars/Base" }, []string{`time zone "Mars/Base"`}},
		{"reserved header", func(h *Hook) { h.Templates.Headers = map[string]string{"webhook-signature": "x"} }, []string{"kanca sets that header"}},
		{"url template", func(h *Hook) { h.Templates.URL = "ftp://{{.uuid}}" }, []string{"url template rendered an unusable URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := base
			h.Events = AllEvents()
			tc.edit(&h)
			err := h.Validate()
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	h := base.withDefaults()
	h.Preset, h.Params = "telegram", map[string]string{"chat_id": "1"}
	assert.NoError(t, h.Validate())
}

// A preset hook's fields survive the store; its events default to the
// preset's and its key is masked in every view.
func TestPresetHookRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h := addHook(t, s, Hook{URL: "https://tr.alertalk.net/webhook/receive", Preset: "alertalk", TZ: "Europe/Istanbul",
		Params: map[string]string{"phone_number": "5321112233", "webhook_key": "k3y"}})
	assert.Equal(t, []string{"missing_call"}, h.Events)
	assert.Equal(t, "tr", h.Lang)
	got, err := s.GetHook(ctx, h.ID)
	require.NoError(t, err)
	assert.Equal(t, h.Params, got.Params)
	assert.Equal(t, "alertalk", got.Preset)
	assert.Equal(t, "POST", got.Method)
	assert.Equal(t, Mask, got.Masked().Params["webhook_key"])
	assert.Equal(t, "5321112233", got.Masked().Params["phone_number"])

	lang := "en"
	up, err := s.UpdateHook(ctx, h.ID, HookUpdate{Lang: &lang, Params: map[string]string{"phone_number": "5320000000"}})
	require.NoError(t, err)
	assert.Equal(t, "en", up.Lang)
	assert.Equal(t, map[string]string{"phone_number": "5320000000", "webhook_key": "k3y"}, up.Params)
	_, err = s.UpdateHook(ctx, h.ID, HookUpdate{Params: map[string]string{"webhook_key": ""}})
	assert.ErrorContains(t, err, "needs --param webhook_key")
}

// A templated delivery that fails is retried like any other: the same
// delivery id, the same rendered body, signed over it each time, and the
// call's next event waits for it.
func TestTemplatedDeliveryIsRetriedInOrder(t *testing.T) {
	s, _ := newStore(t)
	var reqs []captured
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		reqs = append(reqs, captured{r.Method, r.URL.RawQuery, b, r.Header.Clone()}) // one at a time: in order per call
		if len(reqs) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if len(reqs) == 3 {
			close(done)
		}
	}))
	defer srv.Close()
	addHook(t, s, Hook{URL: srv.URL, Secret: "s3cret", Preset: "slack", Lang: "en"})
	enqueue(t, s, event("A", 1, cdr.CallInit), event("A", 2, cdr.CallInitExtension))
	_, stop := run(t, s, DispatchOptions{Retry: fast, PollInterval: 10 * time.Millisecond})
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("not delivered")
	}
	waitFor(t, "all delivered", allIn(t, s, Delivered))
	require.NoError(t, stop())
	require.Len(t, reqs, 3)
	assert.Equal(t, reqs[0].header.Get("X-Kanca-Delivery"), reqs[1].header.Get("X-Kanca-Delivery"), "a retry is the same delivery")
	assert.Equal(t, string(reqs[0].body), string(reqs[1].body))
	assert.Equal(t, `{"text": "Incoming call: 0532 000 00 00 → 0850 885 0000 (`, string(reqs[0].body[:len(`{"text": "Incoming call: 0532 000 00 00 → 0850 885 0000 (`)]))
	assert.Contains(t, string(reqs[2].body), "routed to extension 101")
	for _, r := range reqs {
		verify(t, "s3cret", r, r.body)
	}
}

// The sender keeps parsed templates, yet a changed hook is sent with its
// new ones at once.
func TestChangedTemplatesApplyAtOnce(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	srv, got := captureServer(t)
	h := addHook(t, s, Hook{URL: srv.URL, Events: []string{"call_init"}, Templates: templates.Set{Body: `{"v": 1}`}})
	d := NewDispatcher(s, DispatchOptions{Logger: quiet})
	send := func(h Hook) string {
		r, err := d.Test(ctx, h, SampleEvent(cdr.CallInit, h.Number, fixed), Encoding{})
		require.NoError(t, err)
		require.NoError(t, r.Err)
		return string((<-got).body)
	}
	assert.Equal(t, `{"v": 1}`, send(h))
	assert.Equal(t, `{"v": 1}`, send(h))
	h, err := s.UpdateHook(ctx, h.ID, HookUpdate{Templates: &templates.Set{Body: `{"v": 2}`}})
	require.NoError(t, err)
	assert.Equal(t, `{"v": 2}`, send(h))
	lang := "en"
	h, err = s.UpdateHook(ctx, h.ID, HookUpdate{Templates: &templates.Set{Body: `{"d": {{json (duration 65)}}}`}, Lang: &lang})
	require.NoError(t, err)
	assert.Equal(t, `{"d": "1 min 5 s"}`, send(h))
	lang = "tr"
	h, err = s.UpdateHook(ctx, h.ID, HookUpdate{Lang: &lang})
	require.NoError(t, err)
	assert.Equal(t, `{"d": "1 dk 5 sn"}`, send(h))
}
