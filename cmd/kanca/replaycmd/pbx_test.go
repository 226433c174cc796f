package replaycmd

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fsTrace = "../../../testdata/esl/f05_inbound_callee_busy_486/events.ndjson"

func types(t *testing.T, out string) []string {
	t.Helper()
	var ts []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		i := strings.Index(line, `"event_type":"`)
		require.GreaterOrEqual(t, i, 0, line)
		rest := line[i+len(`"event_type":"`):]
		ts = append(ts, rest[:strings.IndexByte(rest, '"')])
	}
	return ts
}

func TestReplayFreeSWITCH(t *testing.T) {
	out, errOut, err := run(t, "", "--pbx", "freeswitch", "--tz", "Europe/Istanbul", fsTrace)
	require.NoError(t, err)
	assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup", "missing_call"}, types(t, out))
	assert.Contains(t, out, `"hangup_cause":"USER_BUSY"`)
	assert.Contains(t, out, `"sip_hangup_disposition":"send_refuse"`)
	assert.Contains(t, errOut, "4 webhooks written")

	// The same events from standard input give the same bodies.
	data, err := os.ReadFile(fsTrace)
	require.NoError(t, err)
	fromStdin, _, err := run(t, string(data), "-q", "--pbx", "freeswitch", "--tz", "Europe/Istanbul", "-")
	require.NoError(t, err)
	assert.Equal(t, out, fromStdin)
}

func TestReplayPBXFlag(t *testing.T) {
	// FreeSWITCH events read as ARI frames (the default) are refused, not
	// silently skipped.
	// The error says which --pbx the recording wants.
	_, _, err := run(t, "", "-q", fsTrace)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "events.ndjson:1: malformed ARI frame: no event type (a FreeSWITCH event: replay it with --pbx freeswitch)")
	_, _, err = run(t, "", "-q", "--pbx", "freeswitch", "../../../testdata/ari/s01-answered-caller-hangs-up/events.ndjson")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "events.ndjson:1: malformed FreeSWITCH event: no Event-Name (an Asterisk ARI frame: replay it with --pbx asterisk, the default)")
	// A line that is neither gets no guess.
	_, _, err = run(t, `{"hello":"world"}`+"\n", "-q", "-")
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "(")

	// A file that is not there is no replay: no summary of nothing read.
	_, stderr, err := run(t, "", "nope.ndjson")
	require.ErrorContains(t, err, "nope.ndjson: no such file or directory")
	assert.NotContains(t, stderr, "frames read")

	_, _, err = run(t, "", "-q", "--pbx", "yate", fsTrace)
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "asterisk or freeswitch")
	}
}
