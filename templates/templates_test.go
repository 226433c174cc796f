package templates_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/templates"
)

const hangup = `{"event_type":"call_hangup","caller":905321234567,"callee":908508850000,"uuid":"u1","timestamp":1795349463296000,"hangup_cause":"NORMAL_CLEARING","direction":"IN","cdr":{"call_time":"2026-11-22T15:10:55+03:00","answer_time":null,"callflow":[{"callee":101,"answer_time":"2026-11-22T15:10:57+03:00"}]},"talk_duration":65}`

// Each class of template error is reported with the template's name, and
// where the text/template error says where, its line and column.
func TestTemplateErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     templates.Set
		compile bool // the error comes at Compile, not Render
		want    []string
	}{
		{"syntax", templates.Set{Body: "{\n  \"a\": {{.caller}\n}"}, true, []string{"body template", "body:2"}},
		{"unknown function", templates.Set{Body: `{{readFile "/etc/passwd"}}`}, true, []string{"body template", `function "readFile" not defined`}},
		{"missing field", templates.Set{Body: "{\n\"x\": {{json .cdr.calltime}}}"}, false, []string{"body template", "body:2:16", `map has no entry for key "calltime"`}},
		{"missing field in url", templates.Set{URL: "https://x.example/?c={{.caler}}"}, false, []string{"url template", "url:1:23", `"caler"`}},
		{"missing param", templates.Set{Headers: map[string]string{"X-Key": `{{param "key"}}`}}, false, []string{"header X-Key template", `param "key" is not set`}},
		{"bad header name", templates.Set{Headers: map[string]string{"X Key": "v"}}, true, []string{"header X Key", "not a valid HTTP token"}},
		{"header line break", templates.Set{Headers: map[string]string{"X-A": "a\nb"}}, false, []string{"header X-A", "line break"}},
		{"range over a number", templates.Set{Body: "{{range 1000000000}}{{end}}"}, true, []string{"body template", "range over a number"}},
		{"ranges too deep", templates.Set{Body: "{{range .cdr.callflow}}{{range $.cdr.callflow}}{{range $.cdr.callflow}}{{end}}{{end}}{{end}}"}, true, []string{"nested more than 2"}},
		{"recursion", templates.Set{Body: `{{define "a"}}{{template "a" .}}{{end}}{{template "a" .}}`}, true, []string{`"a" calls itself`}},
		{"recursion through include", templates.Set{Body: `{{define "a"}}{{include "a" .}}{{end}}{{include "a" .}}`}, true, []string{`"a" calls itself`}},
		{"include a computed name", templates.Set{Body: `{{include .event_type .}}`}, true, []string{"include takes a quoted template name"}},
		{"output too long", templates.Set{Body: `{{range .cdr.callflow}}{{printf "%070000d" 1}}{{end}}`}, false, []string{"output too long"}},
		{"source too long", templates.Set{URL: strings.Repeat("x", templates.MaxSource+1)}, true, []string{"url template", "more than"}},
		{"bad time", templates.Set{Body: `{{time "15:04" .uuid}}`}, false, []string{"time:"}},
		{"bad duration", templates.Set{Body: `{{duration .uuid}}`}, false, []string{"duration:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := templates.Compile(tc.set, templates.Env{})
			if !tc.compile {
				require.NoError(t, err)
				_, err = c.Render([]byte(hangup))
			}
			require.Error(t, err)
			var te *templates.Error
			assert.ErrorAs(t, err, &te)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestFunctions(t *testing.T) {
	loc, err := time.LoadLocation("Europe/Istanbul")
	require.NoError(t, err)
	for lang, want := range map[string]string{
		"tr": "0532 123 45 67|+90 532 123 45 67|+905321234567|15:11|22.11.2026 15:10|1 dk 5 sn|101|call_init_extension|\"a\\\"<b>\"|ab…|u%3D1",
		"en": "0532 123 45 67|+90 532 123 45 67|+905321234567|15:11|22.11.2026 15:10|1 min 5 s|101|call_init_extension|\"a\\\"<b>\"|ab…|u%3D1",
	} {
		c, err := templates.Compile(templates.Set{Body: `{{national .caller}}|{{international .caller}}|{{e164 .caller}}|` +
			`{{time "15:04" .timestamp}}|{{time "02.01.2006 15:04" .cdr.call_time}}|{{duration .talk_duration}}|` +
			`{{answered .}}|{{kind "incoming_call_extension"}}|{{json "a\"<b>"}}|{{truncate 3 "abcd"}}|{{urlquery "u=1"}}`},
			templates.Env{Location: loc, Lang: lang})
		require.NoError(t, err)
		out, err := c.Render([]byte(hangup))
		require.NoError(t, err)
		assert.Equal(t, want, string(out.Body), lang)
	}
	// Every documented function is there, and every function documented.
	c, err := templates.Compile(templates.Set{Body: `{{with index . "cdr_url"}}{{.}}{{end}}{{url}}`}, templates.Env{URL: "https://h.example"})
	require.NoError(t, err)
	out, err := c.Render([]byte(hangup))
	require.NoError(t, err)
	assert.Equal(t, "https://h.example", string(out.Body), "an absent optional field read with index is empty")
	assert.Len(t, templates.Funcs, 12)
}

func TestPresetLookup(t *testing.T) {
	_, err := templates.LookupPreset("hipchat", "tr", "")
	assert.ErrorContains(t, err, "unknown preset")
	_, err = templates.LookupPreset("slack", "de", "")
	assert.ErrorContains(t, err, "unknown language")
	_, err = templates.LookupPreset("slack", "tr", "GET")
	assert.ErrorContains(t, err, "only echobell takes GET")
	p, err := templates.LookupPreset("alertalk", "", "")
	require.NoError(t, err)
	assert.Equal(t, []string{"missing_call"}, p.Events)
	assert.Equal(t, []string{"phone_number", "webhook_key"}, p.Params)
	assert.Contains(t, p.Set.Body, "Cevapsız çağrı", "Turkish is the default")
}
