package hookscmd

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A receiver with a self-signed certificate is refused until the admin
// opts the hook out of verification, by name, and the listings say so.
func TestInsecureSkipVerifyIsExplicitAndShown(t *testing.T) {
	db := tempDB(t)
	var got atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()

	ok(t, db, "add", "--number", "908508850000", "--url", srv.URL)
	assert.Regexp(t, `insecure skip verify:\s+no`, ok(t, db, "show", "1"), "verification is the default")
	_, _, err := kanca(t, db, "test", "1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "certificate")
	assert.Zero(t, got.Load())

	ok(t, db, "update", "1", "--insecure-skip-verify")
	lines := strings.Split(strings.TrimSpace(ok(t, db, "list")), "\n")
	require.Len(t, lines, 2)
	assert.Regexp(t, `\s+yes$`, lines[1], "the INSECURE column")
	assert.Regexp(t, `insecure skip verify:\s+yes`, ok(t, db, "show", "1"))
	assert.Contains(t, ok(t, db, "show", "1", "--json"), `"insecure_skip_verify": true`)
	assert.Regexp(t, `^HTTP 200 OK`, ok(t, db, "test", "1"))
	assert.Equal(t, int64(1), got.Load())

	ok(t, db, "update", "1", "--insecure-skip-verify=false")
	_, _, err = kanca(t, db, "test", "1")
	require.ErrorContains(t, err, "certificate")
}

// With the daemon's network policy in the environment, adding a hook whose
// host resolves into a refused network warns (and still adds it), and a
// test delivery is refused as the daemon would refuse it.
func TestNetPolicyWarnsAndRefuses(t *testing.T) {
	db := tempDB(t)
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got.Add(1) }))
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	byName := "http://localhost:" + u.Port() + "/hook"

	t.Setenv("KANCA_HOOK_DENY_NET", "127.0.0.0/8, ::1")
	out, stderr, err := kanca(t, db, "add", "--number", "908508850000", "--url", byName)
	require.NoError(t, err)
	assert.Contains(t, out, "id:")
	assert.Contains(t, stderr, "warning: hook 1: localhost: destination refused by the hook network policy:")
	assert.Contains(t, stderr, "in denied network")
	_, stderr, err = kanca(t, db, "update", "1", "--url", srv.URL)
	require.NoError(t, err)
	assert.Contains(t, stderr, "127.0.0.1 is in denied network 127.0.0.0/8")
	_, _, err = kanca(t, db, "test", "1")
	require.ErrorContains(t, err, "destination refused by the hook network policy")
	assert.Zero(t, got.Load())

	_, stderr, err = kanca(t, db, "update", "1", "--timeout", "20s")
	require.NoError(t, err)
	assert.Empty(t, stderr, "no lookup when the URL does not change")

	t.Setenv("KANCA_HOOK_DENY_NET", "10.0.0.0/8")
	t.Setenv("KANCA_HOOK_ALLOW_NET", "127.0.0.0/8,::1")
	_, stderr, err = kanca(t, db, "update", "1", "--url", byName)
	require.NoError(t, err)
	assert.Empty(t, stderr)
	assert.Regexp(t, `^HTTP 200 OK`, ok(t, db, "test", "1"))

	t.Setenv("KANCA_HOOK_ALLOW_NET", "intranet")
	_, stderr, err = kanca(t, db, "update", "1", "--url", srv.URL)
	require.NoError(t, err, "a broken policy is kanca run's to refuse")
	assert.Contains(t, stderr, `warning: KANCA_HOOK_ALLOW_NET/KANCA_HOOK_DENY_NET: hook network allow list: "intranet"`)
	_, _, err = kanca(t, db, "test", "1")
	require.ErrorContains(t, err, `"intranet" is not a CIDR prefix`)
}
