package pipeline_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/templates"
)

// rawRequest is a request as a chat app's endpoint would see it.
type rawRequest struct {
	method, query string
	body          []byte
	header        http.Header
}

// apps is one local receiver standing in for every app, a path each.
type apps struct {
	*httptest.Server
	mu  sync.Mutex
	got map[string][]rawRequest
}

func newApps(t *testing.T) *apps {
	a := &apps{got: map[string][]rawRequest{}}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.got[r.URL.Path] = append(a.got[r.URL.Path], rawRequest{r.Method, r.URL.RawQuery, b, r.Header.Clone()})
		a.mu.Unlock()
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *apps) wait(t *testing.T, want map[string]int) map[string][]rawRequest {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		a.mu.Lock()
		done := true
		for path, n := range want {
			done = done && len(a.got[path]) >= n
		}
		if done || time.Now().After(deadline) {
			out := map[string][]rawRequest{}
			for k, v := range a.got {
				out[k] = append([]rawRequest(nil), v...)
			}
			a.mu.Unlock()
			for path, n := range want {
				require.Len(t, out[path], n, "requests to %s", path)
			}
			return out
		}
		a.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
}

// checkSigned verifies a Standard Webhooks signature over payload.
func checkSigned(t *testing.T, secret string, r rawRequest, payload []byte) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(r.header.Get("webhook-id") + "." + r.header.Get("webhook-timestamp") + "."))
	mac.Write(payload)
	assert.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), r.header.Get("webhook-signature"))
}

// inOrder checks each call's requests arrive in sequence.
func inOrder(t *testing.T, path string, rs []rawRequest) {
	t.Helper()
	last := map[string]int{}
	for _, r := range rs {
		call := r.header.Get("X-Kanca-Call")
		seq, err := strconv.Atoi(r.header.Get("X-Kanca-Sequence"))
		require.NoError(t, err)
		assert.Greater(t, seq, last[call], "%s: call %s in order", path, call)
		last[call] = seq
		assert.NotEmpty(t, r.header.Get("X-Kanca-Delivery"))
	}
}

// Two recorded calls (one answered, one missed) go through the real
// pipeline to a GET hook, a templated POST and every preset: each gets
// every event in the shape it reads, signed over what was sent, in order.
func TestTemplatedHooksThroughPipeline(t *testing.T) {
	a := newApps(t)
	const number = "908508850000"
	hs := []hooks.Hook{
		{Number: number, URL: a.URL + "/get", Method: "GET", Secret: "get-secret"},
		{Number: number, URL: a.URL + "/post", Secret: "post-secret", User: "crm", Password: "pw", TZ: "Europe/Istanbul",
			Templates: templates.Set{
				URL:     "{{url}}",
				Body:    `{"event": {{json (kind .event_type)}}, "from": {{json (national .caller)}}, "call": {{json .uuid}}}`,
				Headers: map[string]string{"X-Caller": "{{e164 .caller}}"},
			}},
		{Number: number, URL: a.URL + "/echobell-get", Method: "GET", Preset: "echobell", Lang: "en"},
	}
	params := map[string]map[string]string{
		"telegram": {"chat_id": "-100"},
		"alertalk": {"phone_number": "5321112233", "webhook_key": "k3y"},
	}
	for _, p := range templates.PresetNames {
		hs = append(hs, hooks.Hook{Number: number, URL: a.URL + "/" + p, Preset: p, Params: params[p], TZ: "Europe/Istanbul"})
	}
	frames := append(load(t, "s01-answered-caller-hangs-up"), load(t, "s03-no-answer-timeout")...)
	f := startWith(t, frames, nil, nil, hs...)

	want := map[string]int{"/get": 7, "/post": 7, "/echobell-get": 7, "/alertalk": 1}
	for _, p := range templates.PresetNames {
		if p != "alertalk" {
			want["/"+p] = 7
		}
	}
	got := a.wait(t, want)
	require.NoError(t, f.stop())
	for path, rs := range got {
		inOrder(t, path, rs)
	}

	for _, r := range got["/get"] {
		assert.Equal(t, "GET", r.method)
		q, err := url.ParseQuery(r.query)
		require.NoError(t, err)
		assert.Equal(t, r.header.Get("X-Kanca-Event"), q.Get("event_type"))
		assert.Equal(t, r.header.Get("X-Kanca-Call"), q.Get("uuid"))
		if q.Get("event_type") == "call_hangup" {
			assert.NotEmpty(t, q.Get("cdr[callflow][0][callee]"), "nested as the form nests it")
		}
		checkSigned(t, "get-secret", r, []byte(r.query))
	}
	for _, r := range got["/post"] {
		var body map[string]string
		require.NoError(t, json.Unmarshal(r.body, &body))
		assert.Equal(t, r.header.Get("X-Kanca-Call"), body["call"])
		assert.True(t, strings.HasPrefix(body["from"], "0532 123 45 6"), body["from"])
		assert.True(t, strings.HasPrefix(r.header.Get("X-Caller"), "+90532"))
		user, pass, _ := (&http.Request{Header: r.header}).BasicAuth()
		assert.Equal(t, "crm:pw", user+":"+pass)
		checkSigned(t, "post-secret", r, r.body)
	}
	for _, r := range got["/echobell-get"] {
		q, err := url.ParseQuery(r.query)
		require.NoError(t, err)
		assert.NotEmpty(t, q.Get("message"))
		assert.True(t, strings.HasPrefix(q.Get("caller"), "0532 123 45 6"))
	}
	field := map[string]func(map[string]any) any{
		"slack":      func(m map[string]any) any { return m["text"] },
		"mattermost": func(m map[string]any) any { return m["text"] },
		"discord":    func(m map[string]any) any { return m["content"] },
		"telegram":   func(m map[string]any) any { return m["text"] },
		"echobell":   func(m map[string]any) any { return m["message"] },
		"alertalk":   func(m map[string]any) any { return m["error_message"] },
		"teams": func(m map[string]any) any {
			card := m["attachments"].([]any)[0].(map[string]any)["content"].(map[string]any)
			return card["body"].([]any)[0].(map[string]any)["text"]
		},
	}
	for _, p := range templates.PresetNames {
		for _, r := range got["/"+p] {
			assert.Equal(t, "POST", r.method)
			assert.Equal(t, "application/json", r.header.Get("Content-Type"))
			var body map[string]any
			require.NoError(t, json.Unmarshal(r.body, &body), "%s: %s", p, r.body)
			msg, _ := field[p](body).(string)
			assert.Contains(t, msg, "0532 123 45 6", "%s: the caller as people write it", p)
			if r.header.Get("X-Kanca-Event") == "call_hangup" && strings.Contains(msg, "0532 123 45 67") {
				assert.Contains(t, msg, "1000 cevapladı", "%s: who answered", p)
			}
		}
	}
	assert.Equal(t, "k3y", got["/alertalk"][0].header.Get("X-Webhook-Key"))
	assert.Equal(t, "missing_call", got["/alertalk"][0].header.Get("X-Kanca-Event"))
}
