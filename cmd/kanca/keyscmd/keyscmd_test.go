package keyscmd

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/cmd/kanca/callscmd"
)

func run(t *testing.T, db string, args ...string) (string, string, error) {
	t.Helper()
	cmd := New(&db)
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

func TestKeysAndCallsTrail(t *testing.T) {
	db := filepath.Join(t.TempDir(), "kanca.db")
	out, stderr, err := run(t, db, "add", "grafana", "--from", "908508850000", "--allow", "905,+44", "--budget", "5", "--rate", "3")
	require.NoError(t, err, stderr)
	secret := strings.TrimSpace(out)
	assert.True(t, strings.HasPrefix(secret, "kk_"), out)
	assert.Contains(t, stderr, "only time it is shown")

	_, _, err = run(t, db, "add", "grafana", "--from", "908508850000")
	assert.ErrorContains(t, err, "exists")
	_, _, err = run(t, db, "add", "x", "--allow", "90")
	assert.ErrorContains(t, err, "--from")
	_, _, err = run(t, db, "add", "x", "--from", "1", "--allow", "9a")
	assert.ErrorContains(t, err, "--allow")
	// Numbers as calls and hooks have them: international digits.
	for _, c := range []struct{ args []string }{
		{[]string{"add", "x", "--from", "abc"}},
		{[]string{"add", "x", "--from", "05321234567"}},
		{[]string{"add", "x", "--from", "908508850000", "--allow", "0532"}},
		{[]string{"add", "bad name", "--from", "908508850000"}},
	} {
		_, _, err = run(t, db, c.args...)
		assert.Error(t, err, "%v", c.args)
	}
	_, _, err = run(t, db, "add", "x", "--from", "05321234567")
	assert.EqualError(t, err, `--from "05321234567": want a PBX number in international digits, as hooks have them (908508850000)`)
	_, _, err = run(t, db, "add", "x", "--from", "908508850000", "--allow", "0532")
	assert.EqualError(t, err, `--allow "0532": want prefixes of international digits, e.g. 90 or 905 (not 0532: 90532)`)
	_, _, err = run(t, db, "add", "bad name", "--from", "908508850000")
	assert.ErrorContains(t, err, `key name "bad name": want letters, digits`)
	_, _, err = run(t, db, "add", "ok", "--from", "+90 850 885 00 01")
	require.NoError(t, err, "written as numbers are")

	list, _, err := run(t, db, "list")
	require.NoError(t, err)
	assert.Regexp(t, `grafana\s+905,44\s+no\s+5\s+3\s+908508850000`, list)
	assert.NotContains(t, list, secret)

	// The key printed is the one requests authenticate with; a request
	// shows in the trail.
	s, err := autodial.Open(autodial.PathFor(db))
	require.NoError(t, err)
	k, err := s.KeyBySecret(context.Background(), secret)
	require.NoError(t, err)
	r := autodial.Request{Numbers: []string{"905321234567"}, Text: "x"}
	require.NoError(t, r.Normalize(k, nil))
	_, err = s.Enqueue(context.Background(), k, "alertalk", "10.0.0.9:5555", r, time.Now(), "2026-12-06")
	require.NoError(t, err)
	require.NoError(t, s.Close())

	calls := callscmd.New(&db)
	var cout bytes.Buffer
	calls.SetOut(&cout)
	calls.SetArgs([]string{"list"})
	require.NoError(t, calls.Execute())
	assert.Regexp(t, `1\s+\S+ \S+\s+grafana\s+alertalk\s+10.0.0.9:5555\s+905321234567\s+queued\s+0\s+-\s+-`, cout.String())

	_, _, err = run(t, db, "remove", "grafana")
	require.NoError(t, err)
	_, _, err = run(t, db, "remove", "grafana")
	assert.ErrorContains(t, err, "no key")
}
