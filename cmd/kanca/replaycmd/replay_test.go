package replaycmd

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cmd/kanca/termline/ptytest"
)

func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := New()
	var o, e bytes.Buffer
	cmd.SetOut(&o)
	cmd.SetErr(&e)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err = cmd.Execute()
	return o.String(), e.String(), err
}

const trace = "../../../testdata/ari/s05-busy/events.ndjson"

func TestReplayPrintsOneBodyPerLine(t *testing.T) {
	out, errOut, err := run(t, "", "--tz", "Europe/Istanbul", trace)
	require.NoError(t, err)
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var b struct {
			Type string `json:"event_type"`
			CDR  struct {
				CallTime string `json:"call_time"`
			} `json:"cdr"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &b), line)
		types = append(types, b.Type)
		if b.CDR.CallTime != "" {
			assert.True(t, strings.HasSuffix(b.CDR.CallTime, "+03:00"), b.CDR.CallTime)
		}
	}
	assert.Equal(t, []string{"call_init", "call_init_extension", "call_hangup", "missing_call"}, types)
	assert.Contains(t, errOut, "4 webhooks written")
}

func TestReplayReadsStdinAndGzip(t *testing.T) {
	data, err := os.ReadFile(trace)
	require.NoError(t, err)
	fromStdin, _, err := run(t, string(data), "-q", "--tz", "UTC", "-")
	require.NoError(t, err)
	fromFile, _, err := run(t, "", "-q", "--tz", "UTC", trace)
	require.NoError(t, err)
	assert.Equal(t, fromFile, fromStdin)

	load, _, err := run(t, "", "-q", "../../../testdata/ari-load/run1_10cps/events.ndjson.gz")
	require.NoError(t, err)
	assert.Equal(t, 1980, strings.Count(load, "\n"), "600 calls: 600 call_init, call_init_extension and call_hangup, 180 missing_call")
}

func TestReplayErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.ndjson")
	good, err := os.ReadFile(trace)
	require.NoError(t, err)
	lines := strings.SplitN(string(good), "\n", 4)
	require.NoError(t, os.WriteFile(bad, []byte(lines[0]+"\n"+lines[1]+"\n{\"type\": \"ChannelCreated\", \n"), 0o644))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{bad}, "bad.ndjson:3"},
		{[]string{filepath.Join(dir, "missing.ndjson")}, "missing.ndjson"},
		{[]string{"--tz", "Mars/Olympus", trace}, "Mars/Olympus"},
		{[]string{"--dialplan", filepath.Join(dir, "none.yaml"), trace}, "none.yaml"},
		{[]string{"--country-code", "0", trace}, "country code"},
		{[]string{}, "requires at least 1 arg"},
	} {
		_, _, err := run(t, "", append([]string{"-q"}, tc.args...)...)
		if assert.Error(t, err, tc.args) {
			assert.Contains(t, err.Error(), tc.want)
		}
	}
}

func TestReplayShowsProgressOnATerminalOnly(t *testing.T) {
	tty, screen := ptytest.Open(t)
	cmd := New()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(tty)
	cmd.SetArgs([]string{"--tz", "UTC", trace})
	require.NoError(t, cmd.Execute())
	const progress = "replay: 32 frames read"
	// 18 of the 32 frames reach the tracker: the rest are ChannelVarset of
	// variables it never reads, dropped before decoding, and events it
	// does not need.
	assert.Equal(t, "\r"+progress+"\r"+strings.Repeat(" ", len(progress))+"\r"+
		"replay: 32 frames read, 18 used, 4 webhooks written\r\n", screen())
	assert.Equal(t, 4, strings.Count(out.String(), "\n"))

	_, errOut, err := run(t, "", "--tz", "UTC", trace)
	require.NoError(t, err)
	assert.Equal(t, "replay: 32 frames read, 18 used, 4 webhooks written\n", errOut, "the summary alone")
}
