package runcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
)

// syncBuffer is the command's stderr, read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// kanca run --listen serves the API on the bound address, and the
// call_hangup it delivers points at the call's record there.
func TestRunServesAPIAndCDRURL(t *testing.T) {
	frames, err := aritest.LoadNDJSON(filepath.Join("..", "..", "..", "testdata", "ari", "s01-answered-caller-hangs-up", "events.ndjson"))
	require.NoError(t, err)
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	ast.Play(frames...)

	var mu sync.Mutex
	var hangup map[string]any
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		if body["event_type"] == "call_hangup" {
			mu.Lock()
			hangup = body
			mu.Unlock()
		}
	}))
	t.Cleanup(recv.Close)
	db := dbWithHook(t, recv.URL)

	t.Setenv("KANCA_ARI_PASSWORD", "kanca")
	addr, stderr, stop := startRun(t, db, "--ari-url", ast.URL, "--ari-user", "kanca")
	base := "http://" + addr
	waitFor(t, "call_hangup delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return hangup != nil
	})
	mu.Lock()
	uuid, _ := hangup["uuid"].(string)
	cdrURL, _ := hangup["cdr_url"].(string)
	mu.Unlock()
	assert.Equal(t, base+"/calls/"+uuid, cdrURL)

	code, body := get(t, cdrURL)
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `"uuid":"`+uuid+`"`)
	code, _ = get(t, base+"/calls/not-a-call")
	assert.Equal(t, http.StatusNotFound, code)
	code, body = get(t, base+"/healthz")
	assert.Equal(t, http.StatusOK, code, body)
	code, body = get(t, base+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "\nkanca_ari_connected 1\n")
	assert.Contains(t, body, "\nkanca_call_events_total 3\n")

	require.NoError(t, stop())
	assert.Contains(t, stderr.String(), `"msg":"kanca stopped"`)
	_, err = net.Dial("tcp", addr)
	assert.Error(t, err, "the server is closed on the way out")
}

func TestRunFlagErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kanca.db")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--ari-user", "kanca", "--public-url", "http://x:1"}, "--public-url needs --listen"},
		{[]string{"--ari-user", "kanca", "--listen", "127.0.0.1:0", "--public-url", "ftp://x"}, "--public-url"},
		{[]string{"--ari-user", "kanca", "--listen", "256.0.0.1:bad"}, "--listen"},
		{[]string{"--ari-user", "kanca", "--dial", "PJSIP/{number}@carrier"}, "--dial needs --listen"},
		{[]string{"--ari-user", "kanca", "--listen", "127.0.0.1:0", "--dial", "PJSIP/carrier"}, "{number}"},
		{[]string{"--ari-user", "kanca", "--listen", "127.0.0.1:0", "--dial", "PJSIP/{number}@c", "--dial-concurrency", "0"}, "--dial-concurrency"},
		{[]string{"--ari-user", "kanca", "--listen", "127.0.0.1:0", "--dial", "PJSIP/{number}@a", "--dial", "PJSIP/{number}@b"}, "two templates without a prefix"},
		{[]string{"--ari-user", "kanca", "--listen", "127.0.0.1:0", "--dial", "90533=PJSIP/{number}@b"}, "no template without a prefix"},
		{[]string{"--ari-user", "kanca", "--pbx-records", filepath.Join(db, "missing")}, "--pbx-records"},
		{[]string{"--ari-user", "kanca", "--pbx-records", "sqlserver://x/y"}, "unknown kind of PBX records"},
	} {
		cmd := New(&db)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		cmd.SetArgs(c.args)
		err := cmd.Execute()
		require.Error(t, err, strings.Join(c.args, " "))
		assert.Contains(t, err.Error(), c.want)
		assert.NotContains(t, err.Error(), "\n")
	}
}

func TestAdvertised(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}
	assert.Equal(t, "127.0.0.1:41234", advertised("127.0.0.1:0", bound))
	assert.Equal(t, "kanca.lan:41234", advertised("kanca.lan:9090", bound))
	assert.Equal(t, "[::1]:41234", advertised("[::1]:0", bound))
	assert.NotContains(t, advertised(":9090", bound), "0.0.0.0")
	assert.NotEqual(t, ":41234", advertised("0.0.0.0:9090", bound))
}

// A second kanca run on the database of a running one refuses to start,
// naming the database and the process; the first says which build it is
// in its first line, logs the database absolutely and warns that no hook
// is enabled.
func TestSecondRunRefusedAndStartSaysWhatItRuns(t *testing.T) {
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	dir := t.TempDir()
	t.Chdir(dir)
	db := "kanca.db" // relative, as KANCA_DB's default is
	t.Setenv("KANCA_ARI_PASSWORD", "kanca")
	args := []string{"--ari-url", ast.URL, "--ari-user", "kanca", "--log-format", "json"}

	first := New(&db)
	var stderr syncBuffer
	first.SetOut(io.Discard)
	first.SetErr(&stderr)
	first.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.ExecuteContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the first to run", func() bool { return strings.Contains(stderr.String(), `"msg":"kanca running"`) })

	lines := strings.Split(stderr.String(), "\n")
	assert.Contains(t, lines[0], `"msg":"kanca starting","version":"`, "the first line names the build")
	abs := filepath.Join(dir, "kanca.db")
	assert.Contains(t, stderr.String(), `"msg":"kanca running"`)
	assert.Contains(t, stderr.String(), `"db":"`+abs+`"`)
	assert.Contains(t, stderr.String(), `"msg":"no enabled hook: call events go to no receiver`)

	second := New(&db)
	second.SetOut(io.Discard)
	second.SetErr(io.Discard)
	second.SetArgs(args)
	err := second.Execute()
	require.Error(t, err)
	host, _ := os.Hostname()
	assert.Contains(t, err.Error(), "database "+abs+" is in use by another kanca run: pid "+strconv.Itoa(os.Getpid())+" on "+host)

	cancel()
	require.NoError(t, <-done)
	done <- nil
	// Stopped: the next start is free.
	third := New(&db)
	third.SetOut(io.Discard)
	var stderr3 syncBuffer
	third.SetErr(&stderr3)
	third.SetArgs(args)
	ctx3, cancel3 := context.WithCancel(context.Background())
	done3 := make(chan error, 1)
	go func() { done3 <- third.ExecuteContext(ctx3) }()
	waitFor(t, "a restart to run", func() bool { return strings.Contains(stderr3.String(), `"msg":"kanca running"`) })
	cancel3()
	require.NoError(t, <-done3)
}

func TestMissingARIPasswordIsSaidAtStart(t *testing.T) {
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	db := filepath.Join(t.TempDir(), "kanca.db")
	t.Setenv("KANCA_ARI_PASSWORD", "")
	cmd := New(&db)
	var stderr syncBuffer
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"--ari-url", ast.URL, "--ari-user", "kanca"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	waitFor(t, "kanca to run", func() bool { return strings.Contains(stderr.String(), "kanca running") })
	assert.Contains(t, stderr.String(), "no ARI password: KANCA_ARI_PASSWORD is not set")
	cancel()
	require.NoError(t, <-done)
}
