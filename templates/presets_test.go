package templates_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/templates"
)

var update = flag.Bool("update", false, "rewrite the golden renderings")

// recorded returns, for every event type, the first body the recorded
// calls made of it (the replay goldens, made from testdata's recordings),
// and for call_hangup and missing_call the same with a cdr_url.
func recorded(t *testing.T) []sample {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "replay", "testdata", "*.ndjson"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	seen := map[string]bool{}
	var out []sample
	for _, f := range files {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev struct {
				Type string `json:"event_type"`
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &ev))
			if seen[ev.Type] {
				continue
			}
			seen[ev.Type] = true
			body := append([]byte(nil), sc.Bytes()...)
			name := strings.TrimSuffix(filepath.Base(f), ".ndjson")
			out = append(out, sample{ev.Type, name, body})
			if ev.Type == "call_hangup" || ev.Type == "missing_call" {
				var m map[string]any
				require.NoError(t, json.Unmarshal(body, &m))
				with := bytes.Clone(bytes.TrimSuffix(body, []byte("}")))
				with = append(with, `,"cdr_url":"https://pbx.example/cdr/`+m["uuid"].(string)+`"}`...)
				out = append(out, sample{ev.Type, name + " with cdr_url", with})
			}
		}
		require.NoError(t, sc.Err())
		fh.Close()
	}
	for _, et := range cdr.EventTypes {
		require.True(t, seen[string(et)], "no recorded %s", et)
	}
	return out
}

type sample struct {
	typ, from string
	body      []byte
}

var istanbul = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		panic(err)
	}
	return loc
}()

// Every preset, in both languages, renders every recorded event type; the
// renderings are golden and each is held against what its app documents.
func TestPresetGoldens(t *testing.T) {
	samples := recorded(t)
	type variant struct{ name, method string }
	variants := []variant{}
	for _, n := range templates.PresetNames {
		variants = append(variants, variant{n, ""})
	}
	variants = append(variants, variant{"echobell", "GET"})
	for _, v := range variants {
		for _, lang := range templates.Langs {
			file := v.name + "-" + lang
			if v.method != "" {
				file += "-" + strings.ToLower(v.method)
			}
			t.Run(file, func(t *testing.T) {
				p, err := templates.LookupPreset(v.name, lang, v.method)
				require.NoError(t, err)
				env := templates.Env{Location: istanbul, Lang: lang, URL: "https://hook.example/t/abc",
					Params: map[string]string{"chat_id": "-1001234567890", "phone_number": "5321112233", "webhook_key": "k3y"}}
				c, err := templates.Compile(p.Set, env)
				require.NoError(t, err)
				var golden bytes.Buffer
				for _, s := range samples {
					out, err := c.Render(s.body)
					require.NoError(t, err, "%s from %s", s.typ, s.from)
					fmt.Fprintf(&golden, "== %s (%s)\n", s.typ, s.from)
					if out.URL != "" {
						fmt.Fprintf(&golden, "GET %s\n", out.URL)
					}
					for _, h := range out.Headers {
						fmt.Fprintf(&golden, "%s: %s\n", h[0], h[1])
					}
					if out.Body != nil {
						fmt.Fprintf(&golden, "%s\n", out.Body)
					}
					checkApp(t, v.name, lang, s, out)
				}
				path := filepath.Join("testdata", file+".golden")
				if *update {
					require.NoError(t, os.WriteFile(path, golden.Bytes(), 0o644))
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "run go test ./templates -update")
				assert.Equal(t, string(want), golden.String())
			})
		}
	}
}

// checkApp holds one rendering against the app's documented webhook shape.
func checkApp(t *testing.T, app, lang string, s sample, out templates.Output) {
	t.Helper()
	ev, err := templates.Data(s.body)
	require.NoError(t, err)
	cdrURL, _ := ev["cdr_url"].(string)
	caller := national(t, ev["caller"])
	var msg string
	if out.URL != "" { // echobell GET: the variables are the query
		u, err := url.Parse(out.URL)
		require.NoError(t, err)
		assert.Equal(t, "hook.example", u.Host)
		q := u.Query()
		msg = q.Get("message")
		assert.Equal(t, caller, q.Get("caller"))
		assert.Equal(t, cdrURL, q.Get("externalLink"))
		assert.Nil(t, out.Body)
	} else {
		var body map[string]any
		require.NoError(t, json.Unmarshal(out.Body, &body), "%s", out.Body)
		str := func(m map[string]any, k string) string {
			v, ok := m[k].(string)
			require.True(t, ok, "%s: %q is a string in %s", app, k, out.Body)
			return v
		}
		switch app {
		case "slack", "mattermost":
			msg = str(body, "text")
			if cdrURL != "" {
				link := "<" + cdrURL + "|"
				if app == "mattermost" {
					link = "](" + cdrURL + ")"
				}
				assert.Contains(t, msg, link)
			}
		case "discord":
			msg = str(body, "content")
			assert.LessOrEqual(t, utf8.RuneCountInString(msg), 2000)
			if cdrURL != "" {
				embeds := body["embeds"].([]any)
				assert.Equal(t, cdrURL, embeds[0].(map[string]any)["url"])
			}
		case "teams":
			assert.Equal(t, "message", body["type"])
			att := body["attachments"].([]any)[0].(map[string]any)
			assert.Equal(t, "application/vnd.microsoft.card.adaptive", att["contentType"])
			card := att["content"].(map[string]any)
			assert.Equal(t, "AdaptiveCard", card["type"])
			assert.NotEmpty(t, card["version"])
			block := card["body"].([]any)[0].(map[string]any)
			assert.Equal(t, "TextBlock", block["type"])
			msg = str(block, "text")
			if cdrURL != "" {
				act := card["actions"].([]any)[0].(map[string]any)
				assert.Equal(t, "Action.OpenUrl", act["type"])
				assert.Equal(t, cdrURL, act["url"])
			}
		case "telegram":
			assert.Equal(t, "-1001234567890", str(body, "chat_id"))
			msg = str(body, "text")
			assert.LessOrEqual(t, utf8.RuneCountInString(msg), 4096)
			if cdrURL != "" {
				kb := body["reply_markup"].(map[string]any)["inline_keyboard"].([]any)
				assert.Equal(t, cdrURL, kb[0].([]any)[0].(map[string]any)["url"])
			}
		case "echobell":
			msg = str(body, "message")
			assert.Equal(t, caller, str(body, "caller"))
			for k, v := range body {
				switch v.(type) {
				case string, float64, bool:
				default:
					t.Errorf("echobell variable %s is not a scalar: %v", k, v)
				}
			}
			if cdrURL != "" {
				assert.Equal(t, cdrURL, str(body, "externalLink"))
			}
		case "alertalk":
			assert.Equal(t, "5321112233", str(body, "phone_number"))
			msg = str(body, "error_message")
			assert.LessOrEqual(t, utf8.RuneCountInString(msg), 500)
			require.Len(t, out.Headers, 1)
			assert.Equal(t, [2]string{"X-Webhook-Key", "k3y"}, out.Headers[0])
		default:
			t.Fatalf("no check for %s", app)
		}
	}
	assert.Contains(t, msg, caller, "the caller as people write it")
	if s.typ == "call_hangup" {
		if who := answeredBy(ev); who != "" {
			assert.Contains(t, msg, who, "who answered")
			word := map[string]string{"tr": "sürdü", "en": "talked"}[lang]
			assert.Contains(t, msg, word, "for how long")
		}
	}
}

func national(t *testing.T, v any) string {
	t.Helper()
	c, err := templates.Compile(templates.Set{Body: "{{national .n}}"}, templates.Env{})
	require.NoError(t, err)
	b, err := json.Marshal(map[string]any{"n": v})
	require.NoError(t, err)
	out, err := c.Render(b)
	require.NoError(t, err)
	return string(out.Body)
}

func answeredBy(ev map[string]any) string {
	flow := ev["cdr"].(map[string]any)["callflow"].([]any)
	for i := len(flow) - 1; i >= 0; i-- {
		if st := flow[i].(map[string]any); st["answer_time"] != nil {
			return fmt.Sprint(st["callee"])
		}
	}
	return ""
}

func TestNationalForm(t *testing.T) {
	for in, want := range map[string]string{
		`905321234567`:   "0532 123 45 67",
		`"905321234567"`: "0532 123 45 67",
		`908508850001`:   "0850 885 0001", // as libphonenumber writes a 0850 number
		`1000`:           "1000",
		`"ivr-main"`:     "ivr-main",
		`"anonymous"`:    "anonymous",
	} {
		c, err := templates.Compile(templates.Set{URL: "{{national .n}}|{{international .n}}"}, templates.Env{})
		require.NoError(t, err)
		out, err := c.Render([]byte(`{"n":` + in + `}`))
		require.NoError(t, err)
		assert.Equal(t, want, strings.Split(out.URL, "|")[0], in)
	}
}
