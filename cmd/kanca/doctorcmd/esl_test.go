package doctorcmd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/esl/esltest"
	"github.com/kanca/kanca/hooks"
)

func TestDoctorFreeSWITCH(t *testing.T) {
	recv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(recv.Close)
	db := filepath.Join(t.TempDir(), "kanca.db")
	s, err := hooks.Open(db)
	require.NoError(t, err)
	_, err = s.AddHook(context.Background(), hooks.Hook{Number: "908508850000", URL: recv.URL})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	fs := esltest.NewServer(esltest.Options{Password: "esl-pw"})
	t.Cleanup(fs.Close)
	pwFile := filepath.Join(t.TempDir(), "esl.pass")
	require.NoError(t, writeFile(pwFile, "esl-pw\n"))

	t.Setenv("KANCA_ESL_PASSWORD", "")
	out, err := kanca(t, db, "--pbx", "freeswitch", "--esl-addr", fs.Addr, "--esl-password-file", pwFile)
	require.NoError(t, err, out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 6, out)
	assert.Equal(t, "OK    event socket reachable: FreeSWITCH's event socket answers at "+fs.Addr, lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "OK    password accepted: FreeSWITCH (Version 1.10"), lines[1])
	assert.True(t, strings.HasPrefix(lines[2], "OK    event json works"), lines[2])
	assert.True(t, strings.HasPrefix(lines[3], "OK    channel list works"), lines[3])

	t.Setenv("KANCA_ESL_PASSWORD", "wrong-Q1")
	out, err = kanca(t, db, "--pbx", "freeswitch", "--esl-addr", fs.Addr)
	require.Error(t, err)
	assert.Equal(t, "1 of 6 checks failed", err.Error())
	assert.Contains(t, out, "FAIL  password accepted: FreeSWITCH refused the password\n"+
		"      fix: set KANCA_ESL_PASSWORD (or --esl-password-file) to the password in event_socket.conf.xml\n")
	assert.Contains(t, out, "SKIP  event json works")
	assert.NotContains(t, out, "wrong-Q1")

	_, err = kanca(t, db, "--pbx", "yate")
	assert.EqualError(t, err, `--pbx "yate" (or KANCA_PBX): want asterisk or freeswitch`)
}
