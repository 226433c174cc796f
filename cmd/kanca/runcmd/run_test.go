package runcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/hooks"
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
	db := filepath.Join(t.TempDir(), "kanca.db")
	store, err := hooks.Open(db)
	require.NoError(t, err)
	_, err = store.AddHook(context.Background(), hooks.Hook{Number: "908508850000", URL: recv.URL})
	require.NoError(t, err)
	require.NoError(t, store.Close())

	t.Setenv("KANCA_ARI_PASSWORD", "kanca")
	cmd := New(&db)
	var stderr syncBuffer
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"--ari-url", ast.URL, "--ari-user", "kanca", "--listen", "127.0.0.1:0", "--log-format", "json"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	addrRe := regexp.MustCompile(`"msg":"serving metrics and API","addr":"([^"]+)"`)
	var addr string
	waitFor(t, "the API to listen", func() bool {
		m := addrRe.FindStringSubmatch(stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
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

	cancel()
	require.NoError(t, <-done)
	done <- nil // for the cleanup
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
		{[]string{"--ari-user", "kanca", "--pbx-records", filepath.Join(db, "missing")}, "--pbx-records"},
		{[]string{"--ari-user", "kanca", "--pbx-records", "postgres://x/y"}, "unknown kind of PBX records"},
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
