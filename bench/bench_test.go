package bench

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
)

var traces = filepath.Join("..", "testdata", "ari")

// Clones must be new calls to kanca: distinct uuids, the same events as
// the recording, nothing of one clone leaking into another.
func TestClonesAreFreshCalls(t *testing.T) {
	tps, err := loadMix(traces, DefaultMix)
	require.NoError(t, err)
	var g generator
	tr := cdr.NewTracker(cdr.DefaultConfig())
	base := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tp := range tps {
		uuids := map[string]bool{}
		byType := map[cdr.EventType]int{}
		want := 0
		for k := range 3 {
			c := g.clone(tp, base.Add(time.Duration(k)*time.Minute))
			for i := range tp.calls {
				uuids[c.uuid(i)] = true
			}
			for i := range tp.frames {
				in, ok, err := ari.Decode(c.render(i))
				require.NoError(t, err, tp.Name)
				if !ok {
					continue
				}
				for _, ev := range tr.Handle(in) {
					assert.True(t, uuids[ev.CallID], "%s: event of an unknown call %s", tp.Name, ev.CallID)
					assert.False(t, ev.Time.Before(base), "%s: times are shifted", tp.Name)
					byType[ev.Type]++
				}
			}
			want += tp.total
		}
		assert.Len(t, uuids, 3*len(tp.calls), tp.Name)
		got := 0
		for _, n := range byType {
			got += n
		}
		assert.Equal(t, want, got, tp.Name)
		assert.Equal(t, 3*len(tp.calls), byType[cdr.CallHangup], tp.Name)
	}
	assert.Zero(t, tr.Calls(), "every clone ended")
}

// TestBenchShort runs every phase with small numbers, so the bench cannot
// rot: the report must be complete and consistent. No timing is asserted.
func TestBenchShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Short(traces))
	require.NoError(t, err)

	l := rep.Load
	assert.Equal(t, l.Expected, l.Delivered, "every event delivered")
	assert.Zero(t, l.Duplicates)
	assert.Equal(t, l.Calls, l.Hangups, "every call's hangup timed")
	assert.Positive(t, l.CallsPerSec)
	assert.Positive(t, l.DeliveriesPerSec)
	assert.Positive(t, l.P99)
	assert.LessOrEqual(t, l.P50, l.P99)
	require.NotNil(t, rep.Slow)
	assert.Equal(t, rep.Slow.Expected, rep.Slow.Delivered, "the fast hook gets everything beside the slow one")
	assert.Equal(t, l.Hooks, rep.Slow.SlowHooks)
	require.NotNil(t, rep.Memory)
	assert.True(t, rep.Memory.Delivered, "the live calls ended and were delivered")
	assert.Positive(t, rep.Memory.TrackerPerCall)
	assert.Positive(t, rep.Delivery.Deliveries)
	assert.Zero(t, rep.Delivery.Duplicates)
	assert.Positive(t, rep.DeliveryVsPost)
	assert.Positive(t, rep.Post.PerSec)
	assert.Positive(t, rep.SQLite.PerSec)
	assert.Positive(t, rep.DeliveriesVsPost)
	assert.Positive(t, rep.RowsVsSQLite)
	assert.Len(t, rep.Targets, 4)
	for _, tg := range rep.Targets {
		assert.NotEmpty(t, tg.Got, tg.Name)
	}
	assert.Len(t, rep.Mix, 9, "every kind of call in the mix")

	var out bytes.Buffer
	rep.Print(&out)
	for _, want := range []string{"deliveries/s", "p99", "per live call", "PASS", "outbox pending"} {
		assert.Contains(t, out.String(), want)
	}
	t.Log("\n" + out.String())
}

// The child phases run a real kanca binary as a process: every call is
// delivered, its CPU is read, and a slow receiver's burst drains.
func TestChildPhases(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kanca")
	}
	bin := filepath.Join(t.TempDir(), "kanca")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/kanca").CombinedOutput()
	require.NoError(t, err, "%s", out)
	o := Options{Traces: traces, Calls: 20, Rate: 0, Binary: bin, Reader: bin, CPU: true, Timeout: time.Minute}
	rep, err := Run(context.Background(), o)
	require.NoError(t, err)
	require.NotNil(t, rep.CPU)
	assert.Equal(t, 20, rep.CPU.Calls)
	assert.Positive(t, rep.CPU.CPU)
	assert.Positive(t, rep.CPU.DecodePerCall)
	assert.Positive(t, rep.CPU.ReadPerCall, "a bare reader read every frame")
	assert.Greater(t, rep.CPU.Frames, 20*10)
	assert.Positive(t, rep.CPU.Commits, "read from the child's last log line")
	assert.Positive(t, rep.CPU.MaxRSS)

	o = Options{Traces: traces, BurstCalls: 12, SlowDelay: 200 * time.Millisecond, Binary: bin, Timeout: time.Minute}
	rep, err = Run(context.Background(), o)
	require.NoError(t, err)
	require.NotNil(t, rep.Burst)
	assert.Equal(t, 12, rep.Burst.Calls)
	assert.GreaterOrEqual(t, rep.Burst.P50, 200*time.Millisecond, "every POST took the receiver's delay")
	var buf bytes.Buffer
	rep.Print(&buf)
	assert.Contains(t, buf.String(), "drained")
}
