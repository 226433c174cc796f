package hooks

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(vals map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vals[k]; return v, ok }
}

func importFile(t *testing.T, s *Store, file string) (ImportReport, error) {
	t.Helper()
	hs, err := ParseSubscriptions(strings.NewReader(file), pbx, env(map[string]string{"CRM_PASS": "pw", "TG": "t0k"}))
	if err != nil {
		return ImportReport{}, err
	}
	return s.Import(context.Background(), hs)
}

const subscriptionFile = `{
  "https://crm.example/hotline": ["call_init", "call_hangup"],
  "https://hooks.slack.com/services/T/B/X": {"preset": "slack", "lang": "en", "events": ["missing_call"]},
  "https://api.telegram.org/botX/sendMessage": [
    {"number": "908508850001", "preset": "telegram", "params": {"chat_id": "42"}},
    {"number": "908508850002", "preset": "telegram", "params": {"chat_id": "43"}, "tz": "Europe/Istanbul"}
  ],
  "https://crm.example/get": {"method": "get", "user": "crm", "password_env": "CRM_PASS", "secret": "whsec_c2VjcmV0",
    "templates": {"headers": {"X-Caller": "{{national .caller}}"}}}
}`

// Import adds what is new, changes what differs, leaves alone what is
// equal, and running it twice changes nothing.
func TestImportIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	other := addHook(t, s, Hook{URL: "https://other.example/"})
	rep, err := importFile(t, s, subscriptionFile)
	require.NoError(t, err)
	assert.Len(t, rep.Added, 5)
	assert.Empty(t, rep.Changed)
	hs, err := s.ListHooks(ctx)
	require.NoError(t, err)
	require.Len(t, hs, 6)
	byURL := map[string]Hook{}
	for _, h := range hs {
		byURL[h.URL+" "+h.Number] = h
	}
	get := byURL["https://crm.example/get "+pbx]
	assert.Equal(t, "GET", get.Method)
	assert.Equal(t, "pw", get.Password, "read from the environment")
	assert.Equal(t, []string{"missing_call"}, byURL["https://hooks.slack.com/services/T/B/X "+pbx].Events)
	assert.Equal(t, "42", byURL["https://api.telegram.org/botX/sendMessage 908508850001"].Params["chat_id"])

	rep, err = importFile(t, s, subscriptionFile)
	require.NoError(t, err)
	assert.Empty(t, rep.Added)
	assert.Empty(t, rep.Changed)
	assert.Len(t, rep.Unchanged, 5)

	changed := strings.Replace(subscriptionFile, `["call_init", "call_hangup"]`, `["call_hangup"]`, 1)
	rep, err = importFile(t, s, changed)
	require.NoError(t, err)
	require.Len(t, rep.Changed, 1)
	assert.Equal(t, []string{"call_hangup"}, rep.Changed[0].Events)
	assert.Len(t, rep.Unchanged, 4)

	_, err = s.GetHook(ctx, other.ID)
	assert.NoError(t, err, "a hook not in the file is left alone")
}

// One bad entry and nothing is imported; every problem is named by URL.
func TestImportIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	bad := strings.Replace(subscriptionFile, `"chat_id": "43"`, `"chatid": "43"`, 1)
	bad = strings.Replace(bad, `"lang": "en"`, `"lang": "de"`, 1)
	_, err := importFile(t, s, bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nothing imported")
	assert.Contains(t, err.Error(), "needs --param chat_id")
	assert.Contains(t, err.Error(), `unknown language "de"`)
	hs, err := s.ListHooks(ctx)
	require.NoError(t, err)
	assert.Empty(t, hs)

	for file, want := range map[string]string{
		`{"https://a.example/": {"evnts": []}}`:                         `unknown field "evnts"`,
		`{"https://a.example/": 3}`:                                     "must be a list of events",
		`{"https://a.example/": {"password_env": "NOPE", "user": "u"}}`: "NOPE is not set",
		`{"https://a.example/": {"secret": "****"}}`:                    "no hook stores one to keep",
		`[]`: "not a JSON object",
	} {
		_, err := importFile(t, s, file)
		assert.ErrorContains(t, err, want, file)
	}
}

// Export writes credentials masked; importing the export changes nothing.
func TestExportImportRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	_, err := importFile(t, s, subscriptionFile)
	require.NoError(t, err)
	addHook(t, s, Hook{URL: "https://tr.alertalk.net/webhook/receive", Preset: "alertalk",
		Params: map[string]string{"phone_number": "5321112233", "webhook_key": "k3y"}})
	hs, err := s.ListHooks(ctx)
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, ExportSubscriptions(&out, hs))
	assert.NotContains(t, out.String(), "k3y")
	assert.NotContains(t, out.String(), `"pw"`)
	assert.Contains(t, out.String(), `"webhook_key": "****"`)
	rep, err := importFile(t, s, out.String())
	require.NoError(t, err)
	assert.Empty(t, rep.Added)
	assert.Empty(t, rep.Changed)
	assert.Len(t, rep.Unchanged, len(hs))
	h, err := s.GetHook(ctx, hs[len(hs)-1].ID)
	require.NoError(t, err)
	assert.Equal(t, "k3y", h.Params["webhook_key"], "the mask keeps the stored key")
}

// Every setting an export writes comes back from it: requests in flight
// and a hook's being disabled too, into the same store (nothing changes)
// and into a new one (the same hooks, credentials given anew).
func TestExportKeepsEverySetting(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	addHook(t, s, Hook{URL: "https://crm.example/a", MaxInFlight: 5})
	off := addHook(t, s, Hook{URL: "https://crm.example/b", MaxInFlight: 1024})
	require.NoError(t, s.SetEnabled(ctx, off.ID, false))
	hs, err := s.ListHooks(ctx)
	require.NoError(t, err)
	var out bytes.Buffer
	require.NoError(t, ExportSubscriptions(&out, hs))
	assert.Contains(t, out.String(), `"max_in_flight": 1024`)
	assert.Contains(t, out.String(), `"disabled": true`)

	rep, err := importFile(t, s, out.String())
	require.NoError(t, err)
	assert.Empty(t, rep.Changed, "%v", rep.What)
	assert.Len(t, rep.Unchanged, 2)

	fresh, _ := newStore(t)
	rep, err = importFile(t, fresh, out.String())
	require.NoError(t, err)
	require.Len(t, rep.Added, 2)
	got, err := fresh.ListHooks(ctx)
	require.NoError(t, err)
	for i := range hs {
		assert.Equal(t, hs[i].MaxInFlight, got[i].MaxInFlight, hs[i].URL)
		assert.Equal(t, hs[i].Enabled, got[i].Enabled, hs[i].URL)
	}
}

// A file may disable a hook, and says what it changed; it never enables
// one (enabling decides what becomes of the events held meanwhile).
func TestImportDisablesButNeverEnables(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	h := addHook(t, s, Hook{URL: "https://crm.example/a"})
	rep, err := importFile(t, s, `{"https://crm.example/a": {"disabled": true, "timeout": "5s"}}`)
	require.NoError(t, err)
	require.Len(t, rep.Changed, 1)
	assert.Equal(t, []string{"timeout", "disabled"}, rep.What[h.ID])
	got, err := s.GetHook(ctx, h.ID)
	require.NoError(t, err)
	assert.False(t, got.Enabled)

	rep, err = importFile(t, s, `{"https://crm.example/a": {"timeout": "5s"}}`)
	require.NoError(t, err)
	assert.Len(t, rep.Unchanged, 1, "no enabling: nothing else differs")
	got, err = s.GetHook(ctx, h.ID)
	require.NoError(t, err)
	assert.False(t, got.Enabled)
}

// A number is matched as hooks store it: written +90 850 885 00 00 in the
// file, it is the stored hook's, not a second one.
func TestImportMatchesNumbersAsStored(t *testing.T) {
	s, _ := newStore(t)
	addHook(t, s, Hook{URL: "https://crm.example/a"})
	rep, err := importFile(t, s, `{"https://crm.example/a": {"number": "+90 850 885 00 00"}}`)
	require.NoError(t, err)
	assert.Empty(t, rep.Added)
	assert.Len(t, rep.Unchanged, 1)
}
