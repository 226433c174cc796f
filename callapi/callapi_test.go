package callapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/callapi"
)

type env struct {
	srv       *httptest.Server
	store     *autodial.Store
	key       string
	woken     int
	callbacks []string
}

func newEnv(t *testing.T, k autodial.Key) *env {
	t.Helper()
	s, err := autodial.Open(filepath.Join(t.TempDir(), "c.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	secret, err := s.AddKey(context.Background(), k)
	require.NoError(t, err)
	e := &env{store: s, key: secret}
	mux := http.NewServeMux()
	callapi.Register(mux, callapi.Config{Store: s, Numbers: autodial.Numbers{Country: "90", Premium: autodial.DefaultPremium},
		Wake: func() { e.woken++ }, Location: time.UTC,
		Callback: func(_ context.Context, url string) error { e.callbacks = append(e.callbacks, url); return nil }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func key() autodial.Key {
	return autodial.Key{Name: "crm", Allow: []string{"90"}, DailyBudget: 100, RatePerMinute: 100, From: []string{"908508850000", "908508850001"}}
}

func (e *env) do(t *testing.T, method, path, ctype, body string) (int, map[string]any) {
	t.Helper()
	auth := ""
	if !strings.Contains(path, "apikey=") {
		auth = "Bearer " + e.key
	}
	resp, m := e.send(t, method, path, ctype, auth, body)
	return resp.StatusCode, m
}

// send makes a request with auth as its Authorization ("" for none) and
// returns the answer, its body decoded.
func (e *env) send(t *testing.T, method, path, ctype, auth, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var m map[string]any
	var raw json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&raw))
	_ = json.Unmarshal(raw, &m)
	return resp, m
}

func (e *env) last(t *testing.T) autodial.RequestView {
	t.Helper()
	vs, err := e.store.Requests(context.Background(), "", 0, 1)
	require.NoError(t, err)
	require.NotEmpty(t, vs)
	return vs[0]
}

func TestAutomaticCalls(t *testing.T) {
	e := newEnv(t, key())
	form := url.Values{"title": {"Kampanya"}, "receivers": {"05321111111,05322222222"}, "did": {"908508850001"},
		"announcement_id": {"welcome"}, "timeout": {"20"}, "gather": {"true"}, "hours_active": {"true"},
		"mon_active": {"true"}, "mon_start": {"09:00"}, "mon_finish": {"18:00"}}
	code, m := e.do(t, "POST", "/automatic-calls?apikey="+e.key, "application/x-www-form-urlencoded", form.Encode())
	require.Equal(t, http.StatusOK, code, m)
	assert.Equal(t, "2 call(s) queued", m["message"])
	assert.Equal(t, 1, e.woken)
	v := e.last(t)
	assert.Equal(t, "automatic", v.Kind)
	assert.Equal(t, []string{"905321111111", "905322222222"}, v.Request.Numbers)
	assert.Equal(t, "908508850001", v.Request.From)
	assert.Equal(t, "welcome", v.Request.Sound)
	assert.Equal(t, 20, v.Request.Timeout)
	assert.True(t, v.Request.Gather)
	require.NotNil(t, v.Request.Window)
	assert.Equal(t, autodial.Day{Active: true, Start: "09:00", Finish: "18:00"}, v.Request.Window.Days[time.Monday])
	assert.False(t, v.Request.Window.Days[time.Tuesday].Active)

	// The results per recipient.
	code, m = e.do(t, "GET", "/automatic-calls/"+jsonNum(v.ID), "", "")
	require.Equal(t, http.StatusOK, code, m)
	calls := m["calls"].([]any)
	require.Len(t, calls, 2)
	c0 := calls[0].(map[string]any)
	assert.Equal(t, false, c0["has_called"])
	assert.Equal(t, false, c0["answer"])
	assert.Equal(t, "", c0["gather"])

	for _, c := range []struct {
		form  url.Values
		field string
	}{
		{url.Values{"did": {"908508850000"}, "sound_url": {"http://x/a.wav"}}, "receivers"},
		{url.Values{"receivers": {"05321111111"}, "sound_url": {"http://x/a.wav"}}, "did"},
		{url.Values{"receivers": {"05321111111"}, "did": {"908508850000"}}, "announcement_id"},
		{url.Values{"receivers": {"05321111111"}, "did": {"908508850000"}, "sound_url": {"ftp://x"}}, "sound_url"},
		{url.Values{"receivers": {"05321111111"}, "did": {"908508850000"}, "sound_url": {"http://x/a.wav"}, "timeout": {"61"}}, "timeout"},
		{url.Values{"receivers": {"05321111111"}, "did": {"902120000000"}, "sound_url": {"http://x/a.wav"}}, "did"},
		{url.Values{"receivers": {"05321111111"}, "did": {"908508850000"}, "sound_url": {"http://x/a.wav"}, "gather": {"maybe"}}, "gather"},
		{url.Values{"receivers": {"05321111111"}, "did": {"908508850000"}, "sound_url": {"http://x/a.wav"}, "hours_active": {"1"},
			"tue_active": {"1"}, "tue_start": {"9"}, "tue_finish": {"18:00"}}, "tue_start"},
	} {
		code, m := e.do(t, "POST", "/automatic-calls", "application/x-www-form-urlencoded", c.form.Encode())
		assert.Equal(t, http.StatusBadRequest, code, c.form.Encode())
		assert.Equal(t, c.field, m["field"], c.form.Encode())
		assert.Equal(t, "error", m["status"])
	}
	vs, err := e.store.Requests(context.Background(), "", 0, 0)
	require.NoError(t, err)
	assert.Len(t, vs, 1, "bad input stores no call")
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestCallAndBridge(t *testing.T) {
	e := newEnv(t, key())
	code, m := e.do(t, "POST", "/call_and_bridge", "application/json", `{"caller":"908508850000","callee":"05321234567","destination":"1000","timeout":25}`)
	require.Equal(t, http.StatusOK, code, m)
	v := e.last(t)
	assert.Equal(t, "call_and_bridge", v.Kind)
	assert.Equal(t, "1000", v.Request.Destination)
	assert.Equal(t, []string{"905321234567"}, v.Request.Numbers)
	assert.Equal(t, 25, v.Request.Timeout)
	code, m = e.do(t, "POST", "/call_and_bridge", "application/json", `{"caller":"908508850000","callee":"05321234567"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "destination", m["field"])
	code, m = e.do(t, "POST", "/call_and_bridge", "application/json", `{"callee":"05321234567","destination":"1000"}`)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "caller", m["field"])
}

func TestOwnAPI(t *testing.T) {
	e := newEnv(t, key())
	code, m := e.do(t, "POST", "/call-requests", "application/json",
		`{"numbers":["05321111111","+90 532 222 22 22"],"text":"Disk dolu","voice":"tr","repeat":2,"gather":true,"escalate":true,
		  "retries":2,"retry_delay":30,"additional_data":"INC-7","callback_url":"https://crm.example/cb"}`)
	require.Equal(t, http.StatusOK, code, m)
	v := e.last(t)
	assert.Equal(t, "INC-7", *v.Request.AdditionalData)
	assert.Equal(t, "https://crm.example/cb", *v.Request.CallbackURL)
	assert.Equal(t, []string{"https://crm.example/cb"}, e.callbacks, "the callback URL gets the call's events")
	assert.True(t, v.Request.Escalate)
	assert.Equal(t, []string{"905321111111", "905322222222"}, v.Request.Numbers)
	for _, c := range []struct{ body, field string }{
		{`{"text":"x"}`, "numbers"},
		{`{"numbers":"05321111111","text":"x","callback_url":"javascript:x"}`, "callback_url"},
		{`{"numbers":["05321111111"],"text":"x","repeat":"twice"}`, "repeat"},
		{`{"numbers":["05321111111"]}`, "text"},
		{`not json`, "body"},
	} {
		code, m := e.do(t, "POST", "/call-requests", "application/json", c.body)
		assert.Equal(t, http.StatusBadRequest, code, c.body)
		assert.Equal(t, c.field, m["field"], c.body)
	}
}

func TestAlertmanager(t *testing.T) {
	e := newEnv(t, key())
	resolved := `{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"alertname":"DiskFull"},"annotations":{"summary":"Disk full on db1"}}]}`
	code, m := e.do(t, "POST", "/alertmanager?to=05321111111", "application/json", resolved)
	require.Equal(t, http.StatusOK, code, m)
	assert.Equal(t, "0 call(s) queued", m["message"])
	vs, err := e.store.Requests(context.Background(), "", 0, 0)
	require.NoError(t, err)
	assert.Empty(t, vs, "no call for resolved alerts")

	firing := `{"version":"4","status":"firing","alerts":[
	  {"status":"firing","labels":{"alertname":"DiskFull"},"annotations":{"summary":"Disk full on db1"}},
	  {"status":"resolved","labels":{"alertname":"Load"},"annotations":{"summary":"Load high"}},
	  {"status":"firing","labels":{"alertname":"NodeDown"},"annotations":{}}]}`
	code, m = e.do(t, "POST", "/alertmanager?to=05321111111,05322222222", "application/json", firing)
	require.Equal(t, http.StatusOK, code, m)
	assert.Equal(t, "2 call(s) queued", m["message"])
	v := e.last(t)
	assert.Equal(t, "Disk full on db1. NodeDown", v.Request.Text)
	code, m = e.do(t, "POST", "/alertmanager", "application/json", firing)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Equal(t, "to", m["field"])
}

func TestRateLimitAndKeys(t *testing.T) {
	k := key()
	k.RatePerMinute = 2
	e := newEnv(t, k)
	body := `{"phone_number":"5321111111","error_message":"x"}`
	for i := 0; i < 2; i++ {
		code, m := e.do(t, "POST", "/webhook/receive", "application/json", body)
		require.Equal(t, http.StatusOK, code, m)
	}
	code, m := e.do(t, "POST", "/webhook/receive", "application/json", body)
	assert.Equal(t, http.StatusTooManyRequests, code, m)
	// Another key's requests are not seen.
	other, err := e.store.AddKey(context.Background(), autodial.Key{Name: "other", Allow: []string{"90"}, DailyBudget: 1, From: []string{"908508850000"}})
	require.NoError(t, err)
	req, _ := http.NewRequest("GET", e.srv.URL+"/call-requests", nil)
	req.Header.Set("X-Webhook-Key", other)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var list []any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	resp.Body.Close()
	assert.Empty(t, list)
	// /speech serves only cached ids, without a key.
	resp, err = http.Get(e.srv.URL + "/speech/..%2f..%2fetc%2fpasswd.wav")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

// A refusal names the field as the endpoint's own request calls it, and
// says how to fix what it can: the key's scheme in any case, when to ask
// again (Retry-After), when a spent budget comes back, what a window or
// a sound name looks like.
func TestRefusalsSpeakTheEndpointsLanguage(t *testing.T) {
	k := key()
	k.RatePerMinute, k.DailyBudget = 6, 1
	e := newEnv(t, k)
	post := func(path, auth, ctype, body string) (*http.Response, map[string]any) {
		return e.send(t, "POST", path, ctype, auth, body)
	}
	resp, m := post("/webhook/receive", "bearer "+e.key, "application/json", `{"phone_number": "4915112345678", "error_message": "disk"}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "the key is taken in any case of its scheme: %v", m)
	assert.Equal(t, "phone_number", m["field"], m)
	resp, m = post("/call-requests", "Bearer "+e.key, "application/json", `["905321111111"]`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "the body must be a JSON object, not a JSON array", m["message"])
	resp, m = post("/call-requests", "Bearer "+e.key, "application/json", `{"numbers": ["905321111111"], "text": "x", "window": "bogus"}`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "window", m["field"])
	assert.Contains(t, m["message"], `"days"`)

	resp, m = post("/automatic-calls?apikey="+e.key, "", "application/x-www-form-urlencoded",
		url.Values{"receivers": {"05321111111"}, "did": {"908508850000"}, "announcement_id": {"custom/welcome"}}.Encode())
	require.Equal(t, http.StatusOK, resp.StatusCode, "a sound in a subdirectory, as FreePBX keeps them: %v", m)
	resp, m = post("/automatic-calls?apikey="+e.key, "", "application/x-www-form-urlencoded",
		url.Values{"receivers": {"05321111111"}, "did": {"908508850000"}, "announcement_id": {"../../etc/passwd"}}.Encode())
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, m)

	// The budget (one call a day) is spent; the rate (six a minute) too.
	resp, m = post("/call-requests", "Bearer "+e.key, "application/json", `{"numbers": ["905321111111"], "text": "x"}`)
	assert.Equal(t, http.StatusPaymentRequired, resp.StatusCode, m)
	assert.Contains(t, m["message"], "starts again at midnight (UTC)")
	resp, m = post("/call-requests", "Bearer "+e.key, "application/json", `{"numbers": ["905321111111"], "text": "x"}`)
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, m)
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Contains(t, m["message"], "try again in")
}
