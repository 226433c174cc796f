package runcmd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/hooks"
)

// kanca run --pbx freeswitch follows the event socket: a recorded call is
// delivered, and health and metrics speak of FreeSWITCH.
func TestRunWithFreeSWITCH(t *testing.T) {
	events, err := esltest.LoadNDJSON(filepath.Join("..", "..", "..", "testdata", "esl", "f01_inbound_answered_caller_hangup", "events.ndjson"))
	require.NoError(t, err)
	fs := esltest.NewServer(esltest.Options{Password: "esl-pw"})
	t.Cleanup(fs.Close)
	fs.Play(events...)

	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		got = append(got, body["event_type"].(string))
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	db := filepath.Join(t.TempDir(), "kanca.db")
	store, err := hooks.Open(db)
	require.NoError(t, err)
	_, err = store.AddHook(context.Background(), hooks.Hook{Number: "908508850000", URL: recv.URL})
	require.NoError(t, err)
	require.NoError(t, store.Close())

	pwFile := filepath.Join(t.TempDir(), "esl.pass")
	require.NoError(t, os.WriteFile(pwFile, []byte("esl-pw\n"), 0o600))
	t.Setenv("KANCA_ESL_PASSWORD", "")
	cmd := New(&db)
	var stderr syncBuffer
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"--pbx", "freeswitch", "--esl-addr", fs.Addr, "--esl-password-file", pwFile,
		"--listen", "127.0.0.1:0", "--log-format", "json"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	addrRe := regexp.MustCompile(`"msg":"serving metrics and API","addr":"([^"]+)"`)
	var addr string
	waitFor(t, "the API to listen", func() bool {
		if m := addrRe.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
		}
		return addr != ""
	})
	waitFor(t, "call_hangup delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	})
	assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup"}, got)
	code, body := get(t, "http://"+addr+"/healthz")
	assert.Equal(t, http.StatusOK, code, body)
	_, body = get(t, "http://"+addr+"/metrics")
	assert.Contains(t, body, "\nkanca_esl_connected 1\n")
	assert.NotContains(t, body, "kanca_ari_connected")
	assert.Contains(t, stderr.String(), `"msg":"kanca running","pbx":"freeswitch","esl":"`+fs.Addr+`"`)
	assert.Contains(t, stderr.String(), `"msg":"connected to FreeSWITCH"`)

	cancel()
	require.NoError(t, <-done)
	done <- nil // for the cleanup
	assert.NotContains(t, stderr.String(), "esl-pw")
}

func TestRunFreeSWITCHFlagErrors(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kanca.db")
	t.Setenv("KANCA_ESL_PASSWORD", "")
	t.Setenv("KANCA_PBX", "")
	for i, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--pbx", "yate"}, `--pbx "yate" (or KANCA_PBX): want asterisk or freeswitch`},
		{[]string{"--pbx", "freeswitch"}, "no password: set KANCA_ESL_PASSWORD or --esl-password-file to event_socket.conf.xml's password"},
		{[]string{"--pbx", "freeswitch", "--esl-password-file", filepath.Join(t.TempDir(), "absent")}, "read event socket password"},
		{[]string{"--pbx", "freeswitch", "--esl-addr", "pbx.example"}, "want host:port"},
		{[]string{"--pbx", "freeswitch", "--esl-addr", "::1:8021"}, `address "::1:8021": write an IPv6 address in brackets, [::1]:8021`},
		{[]string{"--pbx", "freeswitch", "--esl-addr", "127.0.0.1:99999"}, `port "99999" is no port number (1-65535)`},
	} {
		cmd := New(&db)
		cmd.SetOut(io.Discard)
		cmd.SetErr(io.Discard)
		args := c.args
		if i > 1 {
			t.Setenv("KANCA_ESL_PASSWORD", "x") // past the password, to the address
		}
		cmd.SetArgs(args)
		err := cmd.Execute()
		require.Error(t, err, "%v", c.args)
		assert.Contains(t, err.Error(), c.want)
	}
}
