package doctorcmd

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/hooks"
)

func kanca(t *testing.T, db string, args ...string) (string, error) {
	t.Helper()
	cmd := New(&db)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err := cmd.Execute()
	return out.String(), err
}

func TestDoctorOutputAndExit(t *testing.T) {
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(recv.Close)
	db := filepath.Join(t.TempDir(), "kanca.db")
	s, err := hooks.Open(db)
	require.NoError(t, err)
	_, err = s.AddHook(context.Background(), hooks.Hook{Number: "908508850000", URL: recv.URL})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	ast := aritest.NewServer(aritest.Options{OtherApps: []string{"kanca-doctor"}})
	t.Cleanup(ast.Close)
	pwFile := filepath.Join(t.TempDir(), "ari.pass")
	require.NoError(t, writeFile(pwFile, "kanca\n"))

	t.Setenv("KANCA_ARI_PASSWORD", "")
	out, err := kanca(t, db, "--ari-url", ast.URL, "--ari-user", "kanca", "--ari-password-file", pwFile)
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 7, out) // six checks, one WARN with its fix
	assert.True(t, strings.HasPrefix(lines[0], "OK    ARI reachable: Asterisk 20.20.1"), lines[0])
	assert.True(t, strings.HasPrefix(lines[3], "WARN  linkedid reaches kanca: no live channel"), lines[3])
	assert.True(t, strings.HasPrefix(lines[4], "      fix: make sure of ari.conf [general]: channelvars = CHANNEL(linkedid)"), lines[4])
	assert.True(t, strings.HasPrefix(lines[6], "OK    hook 1 (908508850000) answers"), lines[6])

	t.Setenv("KANCA_ARI_PASSWORD", "wrong")
	out, err = kanca(t, db, "--ari-url", ast.URL, "--ari-user", "kanca")
	require.Error(t, err)
	assert.Equal(t, "1 of 6 checks failed", err.Error())
	assert.Contains(t, out, "FAIL  credentials accepted: Asterisk refused user \"kanca\" (HTTP 401)\n"+
		"      fix: check ari.conf [kanca] and KANCA_ARI_USER/KANCA_ARI_PASSWORD (or --ari-password-file)\n")
	assert.Contains(t, out, "SKIP  subscribeAll works")
	assert.NotContains(t, out, "wrong")

	_, err = kanca(t, db, "--ari-url", ast.URL, "--ari-user", "kanca", "--timeout", "0s")
	assert.EqualError(t, err, "--timeout 0s: must be positive")
}

func writeFile(path, s string) error { return os.WriteFile(path, []byte(s), 0o600) }
