package faults

import (
	"cmp"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/esl/esltest"
)

// freeswitchCalls is the recorded FreeSWITCH calls of one switch's run
// (testdata/esl/f*), merged by Event-Sequence into one script: answered,
// missed, cancelled, busy, an IVR menu, a ring group, a queue, an
// outbound call, a fax, two at once.
func freeswitchCalls(t *testing.T) [][]byte {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "esl", "f*"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	type event struct {
		seq int
		raw []byte
	}
	var all []event
	for _, dir := range dirs {
		path := filepath.Join(dir, "events.by-sequence.ndjson")
		if _, err := os.Stat(path); err != nil {
			path = filepath.Join(dir, "events.ndjson")
		}
		frames, err := esltest.LoadNDJSON(path)
		require.NoError(t, err)
		for _, fr := range frames {
			var h struct {
				Seq string `json:"Event-Sequence"`
			}
			require.NoError(t, json.Unmarshal(fr, &h), path)
			seq, err := strconv.Atoi(h.Seq)
			require.NoError(t, err, path)
			all = append(all, event{seq, fr})
		}
	}
	slices.SortStableFunc(all, func(a, b event) int { return cmp.Compare(a.seq, b.seq) })
	frames := make([][]byte, len(all))
	for i, e := range all {
		frames[i] = e.raw
	}
	return frames
}

// TestKillUnderLoadFreeSWITCH is TestKillUnderLoad against a fake
// FreeSWITCH event socket: `kanca run --pbx freeswitch` is killed with
// SIGKILL (once stopped with SIGTERM) while the recorded calls run, the
// switch lives through some of their events unheard, and kanca is started
// again. Every call reaches the receiver with call_hangup, in sequence,
// never twice with two bodies, with its own number, caller and direction;
// calls kanca never stopped during are exact.
func TestKillUnderLoadFreeSWITCH(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("needs POSIX signals")
	}
	frames := freeswitchCalls(t)
	want := expectedBy(t, frames, esl.Decode)
	require.GreaterOrEqual(t, len(want), 10)

	// Paced so that the calls run for a few seconds, some 40 times faster
	// than recorded: the stops fall inside them. Its channel list lags, as
	// FreeSWITCH's core database does (by about 0.1 s), at the same scale.
	fs := esltest.NewServer(esltest.Options{Pace: 4 * time.Millisecond, ListLag: 3 * time.Millisecond})
	t.Cleanup(fs.Close)
	recv := newReceiver(t)
	db := filepath.Join(t.TempDir(), "kanca.db")
	hookEvery(t, db, want, recv.URL+"/hook")
	fs.Play(frames...)

	seed := testSeed(t)
	t.Logf("seed %d (KANCA_FAULTS_SEED=%d replays its stops)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	var windows []window
	const kills = 3
	var d *daemon // the running kanca
	for i := 0; i <= kills; i++ {
		listed := fs.Listings()
		d = startRun(t, db, "--pbx", "freeswitch", "--esl-addr", fs.Addr)
		waitUntil(t, "kanca to list channels", 20*time.Second, func() bool { return fs.Listings() > listed })
		if i == kills {
			break
		}
		if i > 0 {
			windows[len(windows)-1].to = fs.Pos() + 5
		}
		time.Sleep(time.Duration(200+rng.IntN(500)) * time.Millisecond)
		caughtUp(t, fs.SentToCurrent, d)
		pos := fs.Pos()
		d.stop(t, i == 1)
		waitUntil(t, "FreeSWITCH to see kanca gone", 10*time.Second, func() bool { return fs.Clients() == 0 })
		from := fs.Pos()
		fs.LiveThrough(10 + rng.IntN(40))
		windows = append(windows, window{from: pos - 20, to: fs.Pos() + 5})
		t.Logf("stop %d at event %d of %d; unheard, FreeSWITCH went on from %d to %d", i+1, pos, len(frames), from, fs.Pos())
	}
	waitUntil(t, "FreeSWITCH to send every event", 60*time.Second, func() bool { return fs.Pos() == len(frames) })

	tally := judge(t, recv, want, windows, true)
	d.logOnFailure(t)
	require.Positive(t, tally.exact+tally.begunInGap, "the stops must fall inside calls")

	out := run(t, db, "deliveries", "list", "--state", "pending", "--json")
	assert.JSONEq(t, "[]", out)
}
