package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/hooks"
)

// kancaBin is the real binary, built once: exit codes and what reaches the
// terminal are the ones a user sees, not cobra's return values.
var kancaBin string

// buildFlags gains -race when the tests run with it (cli_race_test.go).
var buildFlags []string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kanca-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	kancaBin = filepath.Join(dir, "kanca")
	args := append(append([]string{"build"}, buildFlags...), "-o", kancaBin, ".")
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// kanca runs the binary in dir with a clean environment: no KANCA_*
// variable of the machine running the tests leaks in.
func kanca(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kancaBin, args...)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err, "kanca %s", strings.Join(args, " "))
	}
	return result{out.String(), errb.String(), code}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KANCA_") {
			env = append(env, kv)
		}
	}
	return env
}

// dbs are database files in every state a --db may find.
type dbs struct {
	dir, good, missing, foreign, notSQLite, newer, directory string
}

func makeDBs(t *testing.T) dbs {
	t.Helper()
	dir := t.TempDir()
	d := dbs{
		dir:       dir,
		good:      filepath.Join(dir, "kanca.db"),
		missing:   filepath.Join(dir, "missing.db"),
		foreign:   filepath.Join(dir, "foreign.db"),
		notSQLite: filepath.Join(dir, "notes.txt"),
		newer:     filepath.Join(dir, "newer.db"),
		directory: filepath.Join(dir, "adir"),
	}
	r := kanca(t, dir, nil, "--db", d.good, "hooks", "add", "--number", "908508850000", "--url", "http://127.0.0.1:9/hook")
	require.Zero(t, r.code, r.stderr)

	exec := func(path string, stmts ...string) {
		db, err := sql.Open("sqlite3", path)
		require.NoError(t, err)
		defer db.Close()
		for _, s := range stmts {
			_, err := db.Exec(s)
			require.NoError(t, err, s)
		}
	}
	exec(d.foreign, "CREATE TABLE contacts (name TEXT)", "INSERT INTO contacts VALUES ('x')")
	require.NoError(t, os.WriteFile(d.notSQLite, []byte("name,number\nbob,1000\n"), 0o600))
	s, err := hooks.Open(d.newer)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	exec(d.newer, fmt.Sprintf("PRAGMA user_version = %d", hooks.SchemaVersion+1))
	require.NoError(t, os.Mkdir(d.directory, 0o700))
	return d
}

// TestBadInput runs every command with input it must refuse, and holds the
// answer to: a non-zero exit, one line on standard error naming the
// problem, no usage dump and never a Go panic or stack trace.
func TestBadInput(t *testing.T) {
	d := makeDBs(t)
	notARI := filepath.Join(d.dir, "frames.ndjson")
	require.NoError(t, os.WriteFile(notARI, []byte(`{"type":"StasisStart"`+"\n"), 0o600))
	badYAML := filepath.Join(d.dir, "dialplan.yaml")
	require.NoError(t, os.WriteFile(badYAML, []byte("country_code: ninety\ncontext:\n  inbound: [x]\n"), 0o600))
	ari := []string{"KANCA_ARI_USER=kanca", "KANCA_ARI_URL=http://127.0.0.1:9"}

	db := func(path string, args ...string) []string { return append([]string{"--db", path}, args...) }
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		// the command line itself
		{"unknown command", []string{"hoooks"}, nil, `unknown command "hoooks" for "kanca"; did you mean "hooks"?`},
		{"unknown root flag", []string{"--verbose"}, nil, "unknown flag: --verbose"},
		{"unknown hooks subcommand", []string{"hooks", "delete", "1"}, nil, `unknown command "delete" for "kanca hooks"`},
		{"unknown deliveries subcommand", []string{"deliveries", "replay"}, nil, `unknown command "replay" for "kanca deliveries"`},
		{"unknown completion shell", []string{"completion", "tcsh"}, nil, `unknown command "tcsh" for "kanca completion"`},

		// kanca hooks
		{"hooks add unknown flag", db(d.good, "hooks", "add", "--numbr", "1"), nil, "kanca hooks add: unknown flag: --numbr"},
		{"hooks add letters", db(d.good, "hooks", "add", "--number", "+90850885000O", "--url", "http://x/"), nil, `number "90850885000O" must be digits only`},
		{"hooks add dashes", db(d.good, "hooks", "add", "--number", "0850-885-0000", "--url", "http://x/"), nil, "must be digits only"},
		{"hooks add national form", db(d.good, "hooks", "add", "--number", "0850 885 00 00", "--url", "http://x/"), nil, "is in national form: write it in international form, the country code in place of the 0 (in Turkey, 908508850000)"},
		{"hooks add no number", db(d.good, "hooks", "add", "--url", "http://x/"), nil, "number is required"},
		{"hooks add relative url", db(d.good, "hooks", "add", "--number", "1", "--url", "crm.example/hook"), nil, `url "crm.example/hook" must be absolute http or https`},
		{"hooks add ftp url", db(d.good, "hooks", "add", "--number", "1", "--url", "ftp://crm.example/"), nil, "must be absolute http or https"},
		{"hooks add url without host", db(d.good, "hooks", "add", "--number", "1", "--url", "https:///hook"), nil, "has no host"},
		{"hooks add url that does not parse", db(d.good, "hooks", "add", "--number", "1", "--url", "http://[::1/"), nil, "does not parse"},
		{"hooks add unknown event", db(d.good, "hooks", "add", "--number", "1", "--url", "http://x/", "--events", "call_init,call_ringing"), nil, `unknown event "call_ringing"`},
		{"hooks add format", db(d.good, "hooks", "add", "--number", "1", "--url", "http://x/", "--format", "xml"), nil, `unknown format "xml"`},
		{"hooks add timeout", db(d.good, "hooks", "add", "--number", "1", "--url", "http://x/", "--timeout", "1h"), nil, "timeout 1h0m0s out of range"},
		{"hooks add bad timeout", db(d.good, "hooks", "add", "--number", "1", "--url", "http://x/", "--timeout", "soon"), nil, `invalid argument "soon" for "--timeout"`},
		{"hooks add extra argument", db(d.good, "hooks", "add", "908508850000"), nil, `unknown command "908508850000" for "kanca hooks add"`},
		{"hooks show unknown id", db(d.good, "hooks", "show", "99"), nil, "hook 99: not found"},
		{"hooks show bad id", db(d.good, "hooks", "show", "first"), nil, `invalid hook id "first"`},
		{"hooks show no id", db(d.good, "hooks", "show"), nil, "give a hook id (see kanca hooks list) or --preset NAME"},
		{"hooks update unknown id", db(d.good, "hooks", "update", "99", "--format", "form"), nil, "hook 99: not found"},
		{"hooks update bad url", db(d.good, "hooks", "update", "1", "--url", "mailto:crm@example.com"), nil, "must be absolute http or https"},
		{"hooks update bad number", db(d.good, "hooks", "update", "1", "--number", "ninety"), nil, "must be digits only"},
		{"hooks remove unknown id", db(d.good, "hooks", "remove", "99"), nil, "hook 99: not found"},
		{"hooks enable unknown id", db(d.good, "hooks", "enable", "99"), nil, "hook 99: not found"},
		{"hooks disable bad id", db(d.good, "hooks", "disable", "0"), nil, `invalid hook id "0"`},
		{"hooks disable negative id", db(d.good, "hooks", "disable", "-1"), nil, "unknown shorthand flag"},
		{"hooks test unknown id", db(d.good, "hooks", "test", "99"), nil, "hook 99: not found"},
		{"hooks test unknown event", db(d.good, "hooks", "test", "1", "--event", "call_ringing"), nil, `unknown event "call_ringing"`},
		{"hooks test refused", db(d.good, "hooks", "test", "1"), nil, "test delivery to hook 1 failed"},

		// kanca deliveries
		{"deliveries list state", db(d.good, "deliveries", "list", "--state", "lost"), nil, `unknown state "lost"`},
		{"deliveries list unknown hook", db(d.good, "deliveries", "list", "--hook", "99"), nil, "hook 99: not found"},
		{"deliveries list limit", db(d.good, "deliveries", "list", "--limit", "-1"), nil, "--limit -1"},
		{"deliveries show unknown id", db(d.good, "deliveries", "show", "0190a5c2-7f3e-7b41-9c1d-2a6f0b8e4d21"), nil, `delivery "0190a5c2-7f3e-7b41-9c1d-2a6f0b8e4d21": not found`},
		{"deliveries retry unknown id", db(d.good, "deliveries", "retry", "nope"), nil, `delivery "nope": not found`},
		{"deliveries retry nothing", db(d.good, "deliveries", "retry"), nil, "give a delivery ID, or --dead"},

		// databases that are not there, not kanca's, or too new
		{"hooks list missing db", db(d.missing, "hooks", "list"), nil, "database does not exist"},
		{"hooks show missing db", db(d.missing, "hooks", "show", "1"), nil, "database does not exist"},
		{"hooks update missing db", db(d.missing, "hooks", "update", "1", "--format", "form"), nil, "database does not exist"},
		{"hooks remove missing db", db(d.missing, "hooks", "remove", "1"), nil, "database does not exist"},
		{"hooks enable missing db", db(d.missing, "hooks", "enable", "1"), nil, "database does not exist"},
		{"hooks test missing db", db(d.missing, "hooks", "test", "1"), nil, "database does not exist"},
		{"deliveries list missing db", db(d.missing, "deliveries", "list"), nil, "database does not exist"},
		{"deliveries show missing db", db(d.missing, "deliveries", "show", "x"), nil, "database does not exist"},
		{"deliveries retry missing db", db(d.missing, "deliveries", "retry", "--dead"), nil, "database does not exist"},
		{"missing db from the environment", []string{"hooks", "list"}, []string{"KANCA_DB=" + d.missing}, "open hook store " + d.missing + ": database does not exist"},
		{"hooks list foreign db", db(d.foreign, "hooks", "list"), nil, "not a kanca database"},
		{"hooks add foreign db", db(d.foreign, "hooks", "add", "--number", "1", "--url", "http://x/"), nil, "not a kanca database"},
		{"deliveries list foreign db", db(d.foreign, "deliveries", "list"), nil, "not a kanca database"},
		{"run foreign db", db(d.foreign, "run"), ari, "not a kanca database"},
		{"hooks list not SQLite", db(d.notSQLite, "hooks", "list"), nil, "not a SQLite database"},
		{"hooks add not SQLite", db(d.notSQLite, "hooks", "add", "--number", "1", "--url", "http://x/"), nil, "not a SQLite database"},
		{"deliveries list not SQLite", db(d.notSQLite, "deliveries", "list"), nil, "not a SQLite database"},
		{"run not SQLite", db(d.notSQLite, "run"), ari, "not a SQLite database"},
		{"hooks list directory", db(d.directory, "hooks", "list"), nil, "is a directory"},
		{"hooks list newer schema", db(d.newer, "hooks", "list"), nil, fmt.Sprintf("schema version %d is from a newer kanca", hooks.SchemaVersion+1)},
		{"hooks add newer schema", db(d.newer, "hooks", "add", "--number", "1", "--url", "http://x/"), nil, "is from a newer kanca"},
		{"deliveries list newer schema", db(d.newer, "deliveries", "list"), nil, "is from a newer kanca"},
		{"run newer schema", db(d.newer, "run"), ari, "is from a newer kanca"},
		{"no db path", []string{"--db", "", "hooks", "list"}, nil, "no database path given"},

		// kanca run
		{"run unknown flag", db(d.good, "run", "--ari-pass", "x"), ari, "kanca run: unknown flag: --ari-pass"},
		{"run argument", db(d.good, "run", "now"), ari, `unknown command "now" for "kanca run"`},
		{"run no ARI user", db(d.good, "run"), nil, "no ARI user: set --ari-user or KANCA_ARI_USER to the ari.conf user kanca logs in as"},
		{"run ARI url without scheme", db(d.good, "run", "--ari-url", "127.0.0.1:8088"), ari, `URL "127.0.0.1:8088" has no scheme: write it as http://127.0.0.1:8088`},
		{"run ARI url", db(d.good, "run", "--ari-url", "asterisk:8088"), ari, "ari: URL"},
		{"run ARI password file", db(d.good, "run", "--ari-password-file", filepath.Join(d.dir, "nope")), ari, "read ARI password"},
		{"run deny net", db(d.good, "run", "--hook-deny-net", "10.0.0.0/33"), ari, `"10.0.0.0/33" is not a CIDR prefix`},
		{"run allow net from env", db(d.good, "run"), append([]string{"KANCA_HOOK_ALLOW_NET=intranet"}, ari...), `"intranet" is not a CIDR prefix`},
		{"run listen", db(d.good, "run", "--listen", "9090"), ari, "--listen"},
		{"run public url", db(d.good, "run", "--public-url", "http://x/"), ari, "--public-url needs --listen"},
		{"run log level", db(d.good, "run", "--log-level", "loud"), ari, `--log-level "loud"`},
		{"run tz", db(d.good, "run", "--tz", "Istanbul"), ari, `time zone "Istanbul"`},
		{"run country code", db(d.good, "run", "--country-code", "0"), ari, "country code 0"},
		{"run dialplan missing", db(d.good, "run", "--dialplan", filepath.Join(d.dir, "nope.yaml")), ari, "read dialplan config"},
		{"run dialplan bad", db(d.good, "run", "--dialplan", badYAML), ari, `line 1: got !!str ` + "`ninety`" + `, want a whole number; line 2: unknown key "context"`},

		// kanca replay, demo, doctor, bench
		{"replay no file", []string{"replay"}, nil, "kanca replay: requires at least 1 arg(s)"},
		{"replay missing file", []string{"replay", filepath.Join(d.dir, "nope.ndjson")}, nil, "nope.ndjson: no such file or directory"},
		{"replay not ARI", []string{"replay", notARI}, nil, "frames.ndjson"},
		{"replay pbx", []string{"replay", "--pbx", "3cx", notARI}, nil, `--pbx "3cx"`},
		{"replay tz", []string{"replay", "--tz", "Mars/Olympus", notARI}, nil, `time zone "Mars/Olympus"`},
		{"replay dialplan", []string{"replay", "--dialplan", badYAML, notARI}, nil, "dialplan.yaml: parse dialplan config: line 1"},
		{"demo argument", []string{"demo", "now"}, nil, `unknown command "now" for "kanca demo"`},
		{"demo tz", []string{"demo", "--tz", "Mars/Olympus"}, nil, `time zone "Mars/Olympus"`},
		{"doctor unknown flag", []string{"doctor", "--fix"}, nil, "kanca doctor: unknown flag: --fix"},
		{"doctor timeout", []string{"doctor", "--timeout", "0s"}, nil, "--timeout 0s"},
		{"bench calls", []string{"bench", "--calls", "-5"}, nil, "--calls -5"},
		{"bench rate", []string{"bench", "--rate", "-1"}, nil, "--rate -1"},
		{"bench flag value", []string{"bench", "--calls", "many"}, nil, `invalid argument "many" for "--calls"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := kanca(t, d.dir, c.env, c.args...)
			assert.Equal(t, 1, r.code, "exit code\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
			assertOneLineError(t, r, c.want)
		})
	}
}

// startLog is a log line kanca run writes before it fails on bad input.
var startLog = regexp.MustCompile(`^time=\S+ level=(INFO|WARN) msg="(kanca starting|no ARI password|no event socket password)`)

// assertOneLineError holds a failure's output to a single "kanca: " line
// on standard error that names the problem.
func assertOneLineError(t *testing.T, r result, want string) {
	t.Helper()
	for _, out := range []string{r.stdout, r.stderr} {
		for _, trace := range []string{"panic", "goroutine ", ".go:", "runtime."} {
			assert.NotContains(t, out, trace, "a Go trace reached the user")
		}
		assert.NotContains(t, out, "Usage:", "usage buries the error")
	}
	var errLines []string
	for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
		switch {
		case strings.HasPrefix(l, "kanca: "):
			errLines = append(errLines, l)
		case strings.HasPrefix(l, "replay: "), strings.HasPrefix(l, "warning: "), startLog.MatchString(l):
			// replay's summary, warnings, and kanca run's first log lines
			// (its version, a missing password) come before the error
		default:
			t.Errorf("unexpected line on stderr: %q", l)
		}
	}
	require.Len(t, errLines, 1, "one error line; stderr:\n%s", r.stderr)
	assert.Contains(t, errLines[0], want)
}

// kanca version and kanca --version print the build; an unknown root flag
// is one line with one "kanca: " prefix (it printed "kanca: kanca: ").
func TestVersion(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := kanca(t, dir, nil, args...)
		require.Zero(t, r.code, r.stderr)
		assert.Regexp(t, `^kanca \S+( revision [0-9a-f]+.*)? go1\.\S+\n$`, r.stdout, strings.Join(args, " "))
	}
	r := kanca(t, dir, nil, "--verbose")
	assert.Equal(t, "kanca: unknown flag: --verbose (see 'kanca --help')\n", r.stderr)
}

// kanca status reads the database when no daemon answers, and asks the
// daemon when one does.
func TestStatus(t *testing.T) {
	d := makeDBs(t)
	r := kanca(t, d.dir, nil, "--db", d.good, "status")
	require.Zero(t, r.code, r.stderr)
	assert.Contains(t, r.stdout, "database:  "+d.good)
	assert.Contains(t, r.stdout, "daemon:    none holds this database")
	assert.Regexp(t, `HOOK\s+NUMBER\s+ENABLED\s+QUEUED\s+HELD\s+DEAD\s+LAST SUCCESS\s+LAST FAILURE\n1\s+908508850000\s+yes\s+0\s+0\s+0\s+-\s+-\n`, r.stdout)

	r = kanca(t, d.dir, nil, "--db", d.good, "status", "--listen", "127.0.0.1:1", "--json")
	require.Zero(t, r.code, r.stderr)
	assert.Contains(t, r.stderr, "no kanca run answered on 127.0.0.1:1")
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep))
	assert.Equal(t, "database", rep["from"])
}

// An admin runs kanca with sudo beside a service that runs as a user of
// its own: the database, its journal, the call store and the run lock
// kanca creates then belong to the database directory's owner, so the
// service can still open them.
func TestFilesMadeAsRootBelongToTheDatabaseDirectorysOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("gives files away only as root (CI runs as root)")
	}
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	require.NoError(t, os.Mkdir(state, 0o700))
	require.NoError(t, os.Chown(state, 65534, 65534))
	db := filepath.Join(state, "kanca.db")
	for _, args := range [][]string{
		{"hooks", "add", "--number", "908508850000", "--url", "http://127.0.0.1:9/"},
		{"keys", "add", "grafana", "--from", "908508850000"},
	} {
		r := kanca(t, dir, nil, append([]string{"--db", db}, args...)...)
		require.Zero(t, r.code, "%v: %s", args, r.stderr)
	}
	d := startKanca(t, dir, []string{"KANCA_ARI_USER=kanca"}, "run", "--db", db, "--ari-url", "http://127.0.0.1:9")
	waitUntil(t, "the run lock", func() bool { _, err := os.Stat(db + ".lock"); return err == nil })
	entries, err := os.ReadDir(state)
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(entries), 3)
	for _, e := range entries {
		fi, err := e.Info()
		require.NoError(t, err)
		assert.Equal(t, uint32(65534), fi.Sys().(*syscall.Stat_t).Uid, e.Name())
	}
	d.stop(t)
}
