package statuscmd

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/status"
)

// The report as an admin reads it: the PBX and its age, live calls, and a
// row per hook with its queue, held and dead deliveries and its last
// success and failure.
func TestPrint(t *testing.T) {
	now := time.Now()
	since := now.Add(-3 * time.Minute)
	live := 2
	rep := status.Report{Version: "v1.2.3", Database: "/var/lib/kanca/kanca.db", From: "database",
		PBX: &status.PBX{Kind: "asterisk", Connected: true, Since: &since}, LiveCalls: &live,
		Hooks: []status.Hook{
			{ID: 1, Number: "908508850000", Enabled: true, LastSuccess: &now},
			{ID: 2, Number: "908508850000", Enabled: true, Dead: 1, LastFailure: &now, LastError: "HTTP 502 Bad Gateway"},
			{ID: 3, Number: "908508850000", Held: 1},
		}}
	var b bytes.Buffer
	require.NoError(t, printReport(&b, rep, now))
	out := b.String()
	assert.Regexp(t, `asterisk:\s+connected since \S+ \(3m ago\)`, out)
	assert.Regexp(t, `live calls:\s+2`, out)
	assert.Regexp(t, `\n1\s+908508850000\s+yes\s+0\s+0\s+0\s+just now\s+-\n`, out)
	assert.Regexp(t, `\n2\s+908508850000\s+yes\s+0\s+0\s+1\s+-\s+just now: .*502`, out)
	assert.Regexp(t, `\n3\s+908508850000\s+no\s+0\s+1\s+0\s+-\s+-\n`, out)
}

// While the PBX is down the report says since when, and the error; once
// it is back, the error is told as the one that ended the last connection.
// A receiver's transport error is shown from its cause, not the URL.
func TestPrintPBXDownAndBack(t *testing.T) {
	now := time.Now()
	down := now.Add(-2 * time.Minute)
	failed := now.Add(-time.Second)
	rep := status.Report{Version: "v1", Database: "kanca.db", From: "daemon",
		PBX: &status.PBX{Kind: "asterisk", Since: &down, Reconnects: 4, LastError: "connect ws://127.0.0.1:8088/ari/events: connection refused"},
		Hooks: []status.Hook{{ID: 7, Number: "908508850000", Enabled: true, Queued: 3, LastFailure: &failed,
			LastError: `Post "http://127.0.0.1:18103/closed": dial tcp 127.0.0.1:18103: connect: connection refused`}}}
	var b bytes.Buffer
	require.NoError(t, printReport(&b, rep, now))
	out := b.String()
	assert.Regexp(t, `asterisk:\s+not connected since \S+ \(2m ago\)`, out)
	assert.Regexp(t, `last error:\s+connect ws://127.0.0.1:8088/ari/events: connection refused`, out)
	assert.Contains(t, out, "1s ago: dial tcp 127.0.0.1:18103: connect: connection refused")

	up := now.Add(-10 * time.Second)
	rep.PBX.Connected, rep.PBX.Since = true, &up
	b.Reset()
	require.NoError(t, printReport(&b, rep, now))
	out = b.String()
	assert.Regexp(t, `asterisk:\s+connected since \S+ \(10s ago\)`, out)
	assert.Regexp(t, `last error:\s+before this connection: connect ws://`, out)
}
