package hookscmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/hooks"
)

// kanca runs `kanca hooks args...` against the database at db.
func kanca(t *testing.T, db string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := New(&db)
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err = cmd.Execute()
	return out.String(), errb.String(), err
}

func ok(t *testing.T, db string, args ...string) string {
	t.Helper()
	out, stderr, err := kanca(t, db, args...)
	require.NoError(t, err, "kanca hooks %s: %s", strings.Join(args, " "), stderr)
	return out
}

func tempDB(t *testing.T) string { return filepath.Join(t.TempDir(), "kanca.db") }

func TestHookLifecycle(t *testing.T) {
	db := tempDB(t)
	t.Setenv("CRM_PASS", "hunter2")
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=\n"), 0o600))

	out := ok(t, db, "add", "--number", "908508850000", "--url", "https://crm.example/bf",
		"--user", "bob", "--password-env", "CRM_PASS", "--secret-file", secretFile,
		"--events", "call_init,incoming_call_extension", "--domain-id", "7")
	assert.Contains(t, out, "id:")
	assert.Contains(t, out, "incoming_call_extension")
	ok(t, db, "add", "--number", "908508850001", "--url", "http://10.0.0.5/hook.php", "--format", "form", "--timeout", "30s")

	list := ok(t, db, "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^ID\s+NUMBER\s+URL\s+EVENTS\s+FORMAT\s+AUTH\s+SECRET\s+ENABLED\s+HELD\s+INSECURE$`, lines[0])
	assert.Regexp(t, `^1\s+908508850000\s+https://crm.example/bf\s+call_init,incoming_call_extension\s+json\s+bob:\*\*\*\*\s+\*\*\*\*\s+yes\s+0\s+no$`, lines[1])
	// The default set of seven shows as "all": spelt out, it made the
	// list about 180 columns wide.
	assert.Regexp(t, `^2\s+908508850001\s+http://10.0.0.5/hook.php\s+all\s+form\s+-\s+-\s+yes\s+0\s+no$`, lines[2])

	show := ok(t, db, "show", "1")
	assert.Regexp(t, `password:\s+\*\*\*\*`, show)
	assert.Regexp(t, `secret:\s+\*\*\*\*`, show)
	assert.Regexp(t, `domain id:\s+7`, show)
	assert.Regexp(t, `insecure skip verify:\s+no`, show)

	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok(t, db, "list", "--json")), &listed))
	require.Len(t, listed, 2)
	assert.Equal(t, "****", listed[0]["password"])
	assert.Equal(t, "****", listed[0]["secret"])
	assert.Equal(t, "15s", listed[0]["timeout"])

	for _, o := range []string{list, show, ok(t, db, "list", "--json"), ok(t, db, "show", "1", "--json")} {
		assert.NotContains(t, o, "hunter2")
		assert.NotContains(t, o, "c2VjcmV0")
	}

	// update changes only what is given
	out = ok(t, db, "update", "1", "--url", "https://crm.example/v2", "--insecure-skip-verify")
	assert.Contains(t, out, "https://crm.example/v2")
	show = ok(t, db, "show", "1")
	assert.Regexp(t, `user:\s+bob`, show)
	assert.Regexp(t, `password:\s+\*\*\*\*`, show)
	assert.Regexp(t, `events:\s+call_init, incoming_call_extension`, show)
	assert.Regexp(t, `insecure skip verify:\s+yes`, show)
	ok(t, db, "update", "1", "--user", "", "--password", "", "--domain-id", "0")
	show = ok(t, db, "show", "1")
	assert.Regexp(t, `user:\s+-`, show)
	assert.Regexp(t, `password:\s+-`, show)
	assert.Regexp(t, `domain id:\s+-`, show)

	assert.Equal(t, "disabled hook 1; its events are held until 'kanca hooks enable 1'\n", ok(t, db, "disable", "1"))
	assert.Regexp(t, `enabled:\s+no`, ok(t, db, "show", "1"))
	assert.Equal(t, "enabled hook 1\n", ok(t, db, "enable", "1"))
	assert.Regexp(t, `enabled:\s+yes`, ok(t, db, "show", "1"))

	assert.Equal(t, "removed hook 1\n", ok(t, db, "remove", "1"))
	_, _, err := kanca(t, db, "show", "1")
	require.EqualError(t, err, "hook 1: not found")
}

func TestDiscouragedPasswordFlagWarns(t *testing.T) {
	db := tempDB(t)
	_, stderr, err := kanca(t, db, "add", "--number", "1", "--url", "http://x/", "--user", "u", "--password", "hunter2")
	require.NoError(t, err)
	assert.Contains(t, stderr, "warning: --password is visible")
	assert.NotContains(t, stderr, "hunter2")
}

func TestBadInput(t *testing.T) {
	db := tempDB(t)
	ok(t, db, "add", "--number", "908508850000", "--url", "http://127.0.0.1:9/")
	cases := []struct {
		args []string
		db   string
		err  string
	}{
		{[]string{"add", "--number", "0850-885", "--url", "http://x/"}, db, "must be digits only"},
		{[]string{"add", "--number", "1", "--url", "crm.example/hook"}, db, "must be absolute http or https"},
		{[]string{"add", "--number", "1", "--url", "http://x/", "--events", "call_init,call_ringing"}, db, `unknown event "call_ringing"`},
		{[]string{"add", "--number", "1", "--url", "http://x/", "--format", "xml"}, db, `unknown format "xml"`},
		{[]string{"add", "--number", "1", "--url", "http://x/", "--user", "u", "--password-env", "KANCA_TEST_UNSET_VAR"}, db, "environment variable KANCA_TEST_UNSET_VAR is not set"},
		{[]string{"add", "--number", "1", "--url", "http://x/", "--secret-file", filepath.Join(t.TempDir(), "missing-secret")}, db, "--secret-file: read secret"},
		{[]string{"add", "--number", "1", "--url", "http://x/", "--password", "a", "--password-env", "B"}, db, "none of the others can be"},
		{[]string{"update", "1", "--url", "ftp://x/"}, db, "must be absolute http or https"},
		{[]string{"update", "99", "--url", "http://x/"}, db, "hook 99: not found"},
		{[]string{"show", "99"}, db, "hook 99: not found"},
		{[]string{"show", "abc"}, db, `invalid hook id "abc"`},
		{[]string{"remove", "99"}, db, "hook 99: not found"},
		{[]string{"enable", "99"}, db, "hook 99: not found"},
		{[]string{"test", "1", "--event", "call_ringing"}, db, `unknown event "call_ringing"`},
		{[]string{"list"}, filepath.Join(t.TempDir(), "missing.db"), "database does not exist"},
		{[]string{"list"}, "", "no database path given"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			stdout, _, err := kanca(t, c.db, c.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.err)
			assert.NotContains(t, err.Error(), "\n", "one line")
			if !strings.Contains(c.err, "none of the others") { // a malformed command line gets its usage
				assert.NotContains(t, stdout, "Usage:", "no usage for a failed command")
			}
		})
	}
	_, _, err := kanca(t, db, "show")
	require.ErrorContains(t, err, "give a hook id (see kanca hooks list) or --preset NAME")
}

func TestHelpShowsExamplesAndRetrySchedule(t *testing.T) {
	db := tempDB(t)
	out := ok(t, db, "--help")
	assert.Contains(t, out, "Examples:")
	assert.Contains(t, out, "33 attempts over about 24h")
	for _, sub := range []string{"add", "list", "show", "update", "remove", "enable", "disable", "test"} {
		assert.Contains(t, ok(t, db, sub, "--help"), "Examples:", sub)
	}
}

func TestTestCommand(t *testing.T) {
	db := tempDB(t)
	var mu sync.Mutex
	var bodies []string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, r.Header.Get("X-Kanca-Event")+" "+string(b))
		w.WriteHeader(status)
		w.Write([]byte("received by the CRM"))
	}))
	defer srv.Close()
	ok(t, db, "add", "--number", "908508850000", "--url", srv.URL, "--events", "incoming_call_extension,call_hangup")

	out := ok(t, db, "test", "1")
	assert.Regexp(t, `^HTTP 200 OK in \d+ms\nreceived by the CRM\n$`, out)
	out, stderr, err := kanca(t, db, "test", "1", "--event", "call_init_extension")
	require.NoError(t, err)
	assert.Empty(t, stderr, "an event the hook asked for, in another spelling")
	assert.Contains(t, out, "received by the CRM")
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok(t, db, "test", "1", "--json")), &res), "--json prints JSON")
	assert.Equal(t, "received by the CRM", res["answer"])
	assert.Equal(t, float64(200), res["status"])
	assert.Equal(t, true, res["ok"])
	_, stderr, err = kanca(t, db, "test", "1", "--event", "call_init")
	require.NoError(t, err)
	assert.Equal(t, "warning: hook 1 did not ask for call_init (it gets incoming_call_extension, call_hangup); sent anyway, kanca run would not send it\n", stderr)
	mu.Lock()
	require.Len(t, bodies, 4)
	assert.True(t, strings.HasPrefix(bodies[0], `call_hangup {"event_type":"call_hangup"`), bodies[0])
	assert.True(t, strings.HasPrefix(bodies[1], `incoming_call_extension {"event_type":"incoming_call_extension"`), "the hook's spelling: %s", bodies[1])
	status = http.StatusInternalServerError
	mu.Unlock()

	out, _, err = kanca(t, db, "test", "1")
	require.EqualError(t, err, "test delivery to hook 1 failed: HTTP 500")
	assert.Contains(t, out, "HTTP 500 Internal Server Error")

	ok(t, db, "update", "1", "--url", "http://127.0.0.1:1/")
	_, _, err = kanca(t, db, "test", "1")
	require.ErrorContains(t, err, "test delivery to hook 1 failed:")
	assert.ErrorContains(t, err, "refused")
}

// A disabled hook's events are held; list and show count them, enable
// sends them and --discard-held drops them, saying how many.
func TestHeldEvents(t *testing.T) {
	db := tempDB(t)
	ok(t, db, "add", "--number", "908508850000", "--url", "http://127.0.0.1:1/a")
	ok(t, db, "add", "--number", "908508850000", "--url", "http://127.0.0.1:1/b")
	ok(t, db, "disable", "1")
	ok(t, db, "disable", "2")
	s, err := hooks.Open(db)
	require.NoError(t, err)
	var evs []cdr.Event
	for _, call := range []string{"call-a", "call-b"} {
		evs = append(evs, hooks.SampleEvent(cdr.CallInit, "908508850000", time.Now()))
		evs[len(evs)-1].CallID = call
	}
	errs, err := hooks.NewOutbox(s, hooks.OutboxOptions{}).Commit(context.Background(), []hooks.Unit{{Events: evs}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.NoError(t, s.Close())

	lines := strings.Split(strings.TrimSpace(ok(t, db, "list")), "\n")
	assert.Regexp(t, `^1\s.*\sno\s+2\s+no$`, lines[1])
	assert.Regexp(t, `held:\s+2`, ok(t, db, "show", "2"))
	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok(t, db, "list", "--json")), &listed))
	assert.Equal(t, float64(2), listed[0]["held"])

	assert.Equal(t, "enabled hook 1; 2 held events are sent now, in order per call\n", ok(t, db, "enable", "1"))
	assert.Equal(t, "enabled hook 2; discarded 2 held events\n", ok(t, db, "enable", "2", "--discard-held"))
	assert.Regexp(t, `held:\s+0`, ok(t, db, "show", "1"))
	assert.Equal(t, "enabled hook 1\n", ok(t, db, "enable", "1"))
}

// hooks add says which database it wrote and which events the hook gets;
// hooks test shows an empty answer (a form receiver fed JSON answers 200
// with nothing).
func TestAddAndTestSayWhatHappened(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	dir := t.TempDir()
	t.Chdir(dir)
	out, stderr, err := kanca(t, "kanca.db", "add", "--number", "908508850000", "--url", srv.URL, "--json")
	require.NoError(t, err)
	assert.True(t, json.Valid([]byte(out)), "--json output stays JSON")
	assert.Contains(t, stderr, "hook 1 stored in "+filepath.Join(dir, "kanca.db")+";")
	assert.Contains(t, stderr, "it gets call_init, call_init_extension, call_init_group, call_init_menu, fax_init, call_hangup, missing_call\n")
	assert.Contains(t, stderr, "--events call_init,call_hangup,fax_init")

	_, stderr, err = kanca(t, "kanca.db", "add", "--number", "908508850000", "--url", srv.URL, "--events", "call_hangup")
	require.NoError(t, err)
	assert.Contains(t, stderr, "it gets call_hangup\n")
	assert.NotContains(t, stderr, "first Bulutfon revision", "the admin chose the events")

	assert.Regexp(t, `^HTTP 200 OK in \d+ms\n\(empty answer: .* --format json\)\n$`, ok(t, "kanca.db", "test", "1"))
}

// A second hook for the same number and URL is stored (a receiver may
// want two formats) but warned of when added, and again by an export that
// its own import would refuse. One of another URL or number is not.
func TestHookOfTheSameNumberAndURLIsWarnedOf(t *testing.T) {
	db := tempDB(t)
	_, stderr, err := kanca(t, db, "add", "--number", "908508850000", "--url", "https://crm.example/kanca", "--format", "form")
	require.NoError(t, err)
	assert.NotContains(t, stderr, "warning")
	_, stderr, err = kanca(t, db, "add", "--number", "908508850001", "--url", "https://crm.example/kanca")
	require.NoError(t, err)
	assert.NotContains(t, stderr, "warning")

	_, stderr, err = kanca(t, db, "add", "--number", "908508850000", "--url", "https://crm.example/kanca", "--events", "call_hangup")
	require.NoError(t, err)
	assert.Contains(t, stderr, "warning: hook 1 sends the calls of 908508850000 to the same URL: the receiver gets every event twice, and kanca hooks import refuses an export holding both; change hook 1 instead (kanca hooks update 1) and remove this one (kanca hooks remove 3)")

	exported, stderr, err := kanca(t, db, "export")
	require.NoError(t, err)
	assert.Equal(t, "warning: hooks 1 and 3 send the calls of 908508850000 to the same URL: kanca hooks import refuses this file until one of them is removed\n", stderr)
	file := filepath.Join(t.TempDir(), "hooks.json")
	require.NoError(t, os.WriteFile(file, []byte(exported), 0o600))
	_, _, err = kanca(t, db, "import", file)
	require.ErrorContains(t, err, "matches 2 hooks")

	ok(t, db, "remove", "3")
	_, stderr, err = kanca(t, db, "export")
	require.NoError(t, err)
	assert.Empty(t, stderr)
	_, stderr, err = kanca(t, db, "update", "2", "--number", "908508850000")
	require.NoError(t, err)
	assert.Contains(t, stderr, "warning: hook 1 sends the calls of 908508850000 to the same URL")
}

// The hint for receivers written for Bulutfon's first revision is for
// Bulutfon-shaped bodies, not a preset's message.
func TestBulutfonHintIsForBulutfonBodies(t *testing.T) {
	db := tempDB(t)
	_, stderr, err := kanca(t, db, "add", "--number", "908508850000", "--url", "https://crm.example/kanca")
	require.NoError(t, err)
	assert.Contains(t, stderr, "first Bulutfon revision")
	_, stderr, err = kanca(t, db, "add", "--number", "908508850000", "--preset", "slack", "--url", "https://hooks.slack.com/services/T000/B000/XXXX")
	require.NoError(t, err)
	assert.NotContains(t, stderr, "first Bulutfon revision")
}

// An import says what it changed of each hook it changed.
func TestImportSaysWhatChanged(t *testing.T) {
	db := tempDB(t)
	ok(t, db, "add", "--number", "908508850000", "--url", "https://crm.example/kanca")
	file := filepath.Join(t.TempDir(), "hooks.json")
	require.NoError(t, os.WriteFile(file, []byte(`{"https://crm.example/kanca": {"number": "+90 850 885 00 00", "timeout": "5s", "max_in_flight": 8}}`), 0o600))
	out := ok(t, db, "import", file)
	assert.Contains(t, out, "changed   hook 1 (908508850000 -> https://crm.example/kanca): timeout, max_in_flight\n")
	assert.Contains(t, out, "0 added, 1 changed, 0 unchanged")
}
