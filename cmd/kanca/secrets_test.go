package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
)

// TestSecretsStayHidden gives kanca distinctive credentials, makes every
// delivery fail in a different way so that errors are logged and stored,
// and then looks for the credentials in everything kanca prints or serves:
// command output, --help, errors, logs, metrics and the API.
func TestSecretsStayHidden(t *testing.T) {
	const (
		ariPass     = "ari-pw-Q7zK2vX"
		basicPass   = "basic-pw-M4xR9wL"
		plainSecret = "plain-secret-T8vW3yN"
		signingKey  = "signing-key-J5nB6-0123456789"
		wrongARI    = "wrong-ari-pw-H3cF1"
	)
	whsec := "whsec_" + base64.StdEncoding.EncodeToString([]byte(signingKey))
	secrets := []string{ariPass, basicPass, plainSecret, signingKey, strings.TrimPrefix(whsec, "whsec_"), wrongARI}

	var seen strings.Builder // everything kanca printed or served
	keep := func(what string, r result) result {
		seen.WriteString("\n== " + what + "\n" + r.stdout + r.stderr)
		return r
	}

	dir := t.TempDir()
	db := filepath.Join(dir, "kanca.db")
	secretFile := filepath.Join(dir, "crm.secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(whsec+"\n"), 0o600))
	env := []string{"KANCA_DB=" + db, "KANCA_ARI_PASSWORD=" + ariPass, "KANCA_ARI_USER=kanca", "CRM_PASS=" + basicPass}

	// Receivers that fail: an error status, a redirect, a certificate
	// kanca does not trust, and nobody listening.
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		http.Error(w, "database is down", http.StatusInternalServerError)
	}))
	defer failing.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.example/hook", http.StatusFound)
	}))
	defer redirecting.Close()
	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	untrusted.StartTLS()
	defer untrusted.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := "http://" + l.Addr().String() + "/hook"
	l.Close()

	number := "908508850000" // the public number of the recorded call
	mustOK := func(what string, args ...string) string {
		t.Helper()
		r := keep(what, kanca(t, dir, env, args...))
		require.Zero(t, r.code, "%s: %s", what, r.stderr)
		return r.stdout
	}
	mustOK("add 1", "hooks", "add", "--number", number, "--url", failing.URL, "--user", "crm", "--password-env", "CRM_PASS", "--secret-file", secretFile)
	mustOK("add 2", "hooks", "add", "--number", number, "--url", redirecting.URL, "--user", "crm", "--password", basicPass, "--secret", plainSecret)
	mustOK("add 3", "hooks", "add", "--number", number, "--url", untrusted.URL, "--user", "crm", "--password-env", "CRM_PASS")
	mustOK("add 4", "hooks", "add", "--number", number, "--url", closed, "--secret", whsec)
	list := mustOK("list", "hooks", "list")
	assert.Contains(t, list, "crm:****")
	mustOK("list json", "hooks", "list", "--json")
	for _, id := range []string{"1", "2", "3", "4"} {
		assert.Regexp(t, `secret:\s+(\*\*\*\*|-)`, mustOK("show "+id, "hooks", "show", id))
		mustOK("show json "+id, "hooks", "show", id, "--json")
		r := keep("test "+id, kanca(t, dir, env, "hooks", "test", id))
		assert.NotZero(t, r.code, "hooks test %s must fail", id)
	}
	mustOK("update", "hooks", "update", "1", "--timeout", "5s", "--password-env", "CRM_PASS")

	// Credentials put where they do not belong are refused without being
	// repeated, even when the URL does not parse.
	for i, u := range []string{"http://crm:" + basicPass + "@crm.example/hook", "http://crm:" + basicPass + "%zz@crm.example/hook", "ftp://crm:" + basicPass + "@crm.example/"} {
		r := keep(fmt.Sprintf("add URL with credentials %d", i), kanca(t, dir, env, "hooks", "add", "--number", number, "--url", u))
		assert.Equal(t, 1, r.code)
	}
	for i, u := range []string{"http://kanca:" + ariPass + "@127.0.0.1:8088", "kanca:" + ariPass + "@127.0.0.1:8088"} {
		r := keep(fmt.Sprintf("run ARI URL with password %d", i), kanca(t, dir, slices.Concat(env, []string{"KANCA_ARI_URL=" + u}), "run"))
		assert.Equal(t, 1, r.code)
		keep(fmt.Sprintf("run --help, ARI URL with password %d", i), kanca(t, dir, slices.Concat(env, []string{"KANCA_ARI_URL=" + u}), "run", "--help"))
	}

	// --help everywhere, with every secret in the environment and a
	// password in the ARI URL.
	helpEnv := slices.Concat(env, []string{"KANCA_ARI_URL=http://kanca:" + ariPass + "@127.0.0.1:8088", "KANCA_ARI_PASSWORD_FILE=" + secretFile})
	for _, args := range [][]string{{}, {"run"}, {"doctor"}, {"hooks"}, {"hooks", "add"}, {"hooks", "update"}, {"hooks", "test"},
		{"deliveries"}, {"deliveries", "list"}, {"replay"}, {"demo"}, {"bench"}} {
		keep("help "+strings.Join(args, " "), kanca(t, dir, helpEnv, append(args, "--help")...))
	}

	// The daemon, with debug logs, delivering the recorded call to the
	// four failing hooks, its metrics and API read while it runs.
	frames, err := aritest.LoadNDJSON(filepath.Join("..", "..", "testdata", "ari", "s01-answered-caller-hangs-up", "events.ndjson"))
	require.NoError(t, err)
	ast := aritest.NewServer(aritest.Options{Password: ariPass})
	defer ast.Close()
	ast.Play(frames...)
	d := startKanca(t, dir, env, "run", "--ari-url", ast.URL, "--listen", "127.0.0.1:0", "--log-level", "debug", "--log-format", "json")
	addrRe := regexp.MustCompile(`"msg":"serving metrics and API","addr":"([^"]+)"`)
	var base string
	waitUntil(t, "the API", func() bool {
		if m := addrRe.FindStringSubmatch(d.stderr.String()); m != nil {
			base = "http://" + m[1]
		}
		return base != ""
	})
	waitUntil(t, "a failed attempt on every hook", func() bool {
		var ds []struct {
			HookID   int64 `json:"hook_id"`
			Attempts int   `json:"attempts"`
		}
		if err := json.Unmarshal([]byte(httpGet(t, base+"/deliveries?limit=100")), &ds); err != nil {
			return false
		}
		tried := map[int64]bool{}
		for _, d := range ds {
			if d.Attempts > 0 {
				tried[d.HookID] = true
			}
		}
		return len(tried) == 4
	})
	served := []string{httpGet(t, base+"/metrics"), httpGet(t, base+"/healthz"), httpGet(t, base+"/deliveries?limit=100")}
	var ds []struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(served[2]), &ds))
	for _, dl := range ds {
		served = append(served, httpGet(t, base+"/deliveries/"+dl.ID))
	}
	seen.WriteString(strings.Join(served, "\n"))
	assert.Contains(t, served[0], "kanca_", "metrics served")
	keep("kanca run", d.stop(t))
	logs := d.stderr.String()
	assert.Contains(t, logs, "redirects are not followed")
	assert.Contains(t, logs, "certificate")
	assert.Contains(t, logs, "HTTP 500")

	mustOK("deliveries list", "deliveries", "list")
	for _, dl := range ds {
		mustOK("deliveries show "+dl.ID, "deliveries", "show", dl.ID)
		mustOK("deliveries show json "+dl.ID, "deliveries", "show", dl.ID, "--json")
	}

	// Refused by Asterisk: the password is wrong, and still not shown.
	ast.SetAuth("kanca", "something-else")
	wrong := startKanca(t, dir, slices.Concat(env, []string{"KANCA_ARI_PASSWORD=" + wrongARI}), "run", "--ari-url", ast.URL, "--log-level", "debug")
	waitUntil(t, "the refusal logged", func() bool { return strings.Contains(wrong.stderr.String(), "cannot connect to Asterisk") })
	keep("kanca run, wrong password", wrong.stop(t))
	keep("doctor", kanca(t, dir, slices.Concat(env, []string{"KANCA_ARI_PASSWORD=" + wrongARI}), "doctor", "--ari-url", ast.URL, "--timeout", "2s"))

	all := seen.String()
	for _, s := range secrets {
		if strings.Contains(all, s) {
			i := strings.Index(all, s)
			t.Errorf("secret %q shown:\n...%s...", s, all[max(0, i-300):min(len(all), i+100)])
		}
	}
}

// daemon is a kanca run in the background.
type daemon struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr lockedBuffer
	done   chan error
}

func startKanca(t *testing.T, dir string, env []string, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(kancaBin, args...), done: make(chan error, 1)}
	d.cmd.Dir = dir
	d.cmd.Env = append(cleanEnv(), env...)
	d.cmd.Stdout, d.cmd.Stderr = &d.stdout, &d.stderr
	require.NoError(t, d.cmd.Start())
	go func() { d.done <- d.cmd.Wait() }()
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	return d
}

// stop ends the daemon as systemd would and returns what it printed.
func (d *daemon) stop(t *testing.T) result {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-d.done:
		assert.NoError(t, err, "kanca run exits 0 on SIGTERM; stderr:\n%s", d.stderr.String())
	case <-time.After(time.Minute):
		_ = d.cmd.Process.Kill()
		t.Fatalf("kanca run did not stop on SIGTERM")
	}
	return result{stdout: d.stdout.String(), stderr: d.stderr.String()}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// waitUntil polls cond; the deadline only turns a hang into a failure.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
