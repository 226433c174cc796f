package hookscmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/templates"
)

func TestPresetHook(t *testing.T) {
	db := tempDB(t)
	out := ok(t, db, "add", "--number", "908508850000", "--preset", "telegram", "--lang", "en",
		"--url", "https://api.telegram.org/bot1:A/sendMessage", "--param", "chat_id=-100", "--tz", "Europe/Istanbul")
	assert.Regexp(t, `preset:\s+telegram \(en\)`, out)
	assert.Regexp(t, `param:\s+chat_id=-100`, out)
	show := ok(t, db, "show", "1")
	assert.Contains(t, show, "templates (preset telegram (en)):")
	assert.Contains(t, show, `"chat_id": {{json (param "chat_id")}}`)

	_, _, err := kanca(t, db, "add", "--number", "908508850000", "--preset", "telegram", "--url", "https://api.telegram.org/bot1:A/sendMessage")
	assert.ErrorContains(t, err, "needs --param chat_id")

	body := filepath.Join(t.TempDir(), "body.tmpl")
	require.NoError(t, os.WriteFile(body, []byte("{\"n\": {{json .caler}}}"), 0o644))
	_, _, err = kanca(t, db, "add", "--number", "908508850000", "--url", "https://crm.example/", "--body-template-file", body)
	assert.ErrorContains(t, err, `body:1:13: executing "body" at <.caler>: map has no entry for key "caler"`)

	ok(t, db, "update", "1", "--preset", "", "--body-template", `{"c": {{json .caller}}}`, "--header-template", "X-A={{.uuid}}", "--events", "call_init")
	show = ok(t, db, "show", "1")
	assert.Contains(t, show, "templates (its own):")
	assert.Contains(t, show, "--- header X-A\n{{.uuid}}")
	ok(t, db, "update", "1", "--header-template", "X-A=")
	assert.NotContains(t, ok(t, db, "show", "1"), "X-A")
}

// show --preset prints what a preset expands to; --json is a templates
// object a subscription file takes as it is.
func TestShowPreset(t *testing.T) {
	db := tempDB(t)
	for _, name := range templates.PresetNames {
		out := ok(t, db, "show", "--preset", name, "--lang", "en")
		assert.Contains(t, out, "preset:")
		assert.Contains(t, out, "--- body")
	}
	out := ok(t, db, "show", "--preset", "echobell", "--method", "get", "--json")
	var set templates.Set
	require.NoError(t, json.Unmarshal([]byte(out), &set))
	assert.True(t, strings.HasPrefix(set.URL, "{{url}}?message="))
	_, _, err := kanca(t, db, "show", "--preset", "slack", "--lang", "de")
	assert.ErrorContains(t, err, "unknown language")
}

func TestImportExport(t *testing.T) {
	db := tempDB(t)
	t.Setenv("CRM_PASS", "pw")
	file := filepath.Join(t.TempDir(), "hooks.json")
	require.NoError(t, os.WriteFile(file, []byte(`{
  "https://crm.example/hotline": ["call_init", "call_hangup"],
  "https://crm.example/get": {"method": "GET", "user": "crm", "password_env": "CRM_PASS"},
  "https://hooks.slack.com/services/T/B/X": {"preset": "slack", "events": ["missing_call"]}
}`), 0o644))
	out := ok(t, db, "import", file, "--number", "908508850000")
	assert.Contains(t, out, "3 added, 0 changed, 0 unchanged")
	assert.Contains(t, out, "added     hook 1 (908508850000 -> https://crm.example/get)")
	out = ok(t, db, "import", file, "--number", "908508850000")
	assert.Contains(t, out, "0 added, 0 changed, 3 unchanged", "a second import changes nothing")

	exported := ok(t, db, "export")
	assert.NotContains(t, exported, `"pw"`)
	assert.Contains(t, exported, `"password": "****"`)
	back := filepath.Join(t.TempDir(), "back.json")
	require.NoError(t, os.WriteFile(back, []byte(exported), 0o644))
	assert.Contains(t, ok(t, db, "import", back), "0 added, 0 changed, 3 unchanged")

	_, _, err := kanca(t, db, "import", file)
	assert.ErrorContains(t, err, "no number: give one in the entry or with --number")
}
