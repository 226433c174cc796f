package replay_test

import (
	"encoding/json"
	"io"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/replay"
)

// inputs decodes a recorded stream into tracker inputs.
func inputs(t *testing.T, path string, decode func([]byte) (cdr.Input, bool, error), reorder func(io.Reader) io.Reader) []cdr.Input {
	t.Helper()
	ins, err := replay.Inputs(path, decode, reorder)
	require.NoError(t, err)
	return ins
}

// journal is what kanca keeps across a restart: the inputs the tracker
// needs, less those of channels it reports finished.
type journal struct {
	entries []journalEntry
}

type journalEntry struct {
	channel string
	input   []byte // as stored: JSON
}

func (j *journal) feed(t *testing.T, tr *cdr.Tracker, in cdr.Input) []cdr.Event {
	needed := tr.Needs(in)
	evs := tr.Handle(in)
	if needed {
		b, err := json.Marshal(in)
		require.NoError(t, err)
		j.entries = append(j.entries, journalEntry{in.Channel.ID, b})
	}
	if done := tr.Finished(nil); len(done) > 0 {
		j.entries = slices.DeleteFunc(j.entries, func(e journalEntry) bool { return slices.Contains(done, e.channel) })
	}
	return evs
}

// restore builds a new tracker from the journal, as kanca does on start.
func (j *journal) restore(t *testing.T) *cdr.Tracker {
	tr := cdr.NewTracker(cdr.DefaultConfig())
	ins := make([]cdr.Input, len(j.entries))
	for i, e := range j.entries {
		require.NoError(t, json.Unmarshal(e.input, &ins[i]))
	}
	require.Empty(t, tr.Restore(ins), "no call the journal holds had ended")
	return tr
}

func encoded(t *testing.T, evs []cdr.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		b, err := json.Marshal(ev)
		require.NoError(t, err)
		out[i] = string(b)
	}
	return out
}

// TestJournalRestoresTheTracker cuts every recording at many points, as a
// kill -9 would, restores a tracker from the journal kept up to the cut,
// and feeds it the rest: it must say exactly what the tracker that never
// stopped says. At the end of each recording every call has ended, so the
// journal must be empty: it cannot grow without bound.
func TestJournalRestoresTheTracker(t *testing.T) {
	type trace struct {
		name string
		ins  []cdr.Input
		cuts int
	}
	var traces []trace
	ariDirs, err := filepath.Glob(filepath.Join("..", "testdata", "ari", "s*"))
	require.NoError(t, err)
	for _, d := range ariDirs {
		traces = append(traces, trace{filepath.Base(d), inputs(t, filepath.Join(d, "events.ndjson"), ari.Decode, nil), 40})
	}
	eslDirs, err := filepath.Glob(filepath.Join("..", "testdata", "esl", "f*"))
	require.NoError(t, err)
	for _, d := range eslDirs {
		traces = append(traces, trace{filepath.Base(d), inputs(t, filepath.Join(d, "events.ndjson"), esl.Decode, esl.Reorder), 40})
	}
	load := filepath.Join("..", "testdata", "ari-load", "run1_10cps", "events.ndjson.gz")
	cuts := 6
	if testing.Short() {
		cuts = 2
	}
	traces = append(traces, trace{"load", inputs(t, load, ari.Decode, nil), cuts})
	require.GreaterOrEqual(t, len(traces), 24)

	for _, tc := range traces {
		t.Run(tc.name, func(t *testing.T) {
			require.NotEmpty(t, tc.ins)
			// The run that never stops, and the journal it keeps.
			tr := cdr.NewTracker(cdr.DefaultConfig())
			var j journal
			want := make([][]string, len(tc.ins)) // events of each input
			snapshots := map[int]journal{}
			step := max(len(tc.ins)/tc.cuts, 1)
			for i, in := range tc.ins {
				if i%step == 0 {
					snapshots[i] = journal{entries: slices.Clone(j.entries)}
				}
				want[i] = encoded(t, j.feed(t, tr, in))
			}
			require.Zero(t, tr.Calls(), "every call of the recording ends")
			require.Empty(t, j.entries, "the journal keeps nothing once every call has ended")

			restarts := 0
			for cut, snap := range snapshots {
				restored := snap.restore(t)
				for i := cut; i < len(tc.ins); i++ {
					got := encoded(t, restored.Handle(tc.ins[i]))
					require.Equal(t, want[i], got, "cut before input %d of %d: input %d (%s of %s)",
						cut, len(tc.ins), i, tc.ins[i].Kind, tc.ins[i].Channel.ID)
				}
				restarts++
			}
			require.Positive(t, restarts)
		})
	}
}
