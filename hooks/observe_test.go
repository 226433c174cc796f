package hooks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
)

// Each recorded attempt reaches OnAttempt and the per-hook counts, split by
// hook and outcome.
func TestAttemptsReportedPerHook(t *testing.T) {
	s, _ := newStore(t)
	fine := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer fine.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer failing.Close()
	good := addHook(t, s, Hook{URL: fine.URL})
	bad := addHook(t, s, Hook{URL: failing.URL})
	enqueue(t, s, event("A", 1, cdr.CallInit), event("B", 1, cdr.CallInit))

	var mu sync.Mutex
	var got []AttemptReport
	two := RetryPolicy{Initial: time.Millisecond, Factor: 1, Max: time.Millisecond, Attempts: 2}
	d, stop := run(t, s, DispatchOptions{Retry: two, PollInterval: 10 * time.Millisecond, OnAttempt: func(r AttemptReport) {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
	}})
	waitFor(t, "every delivery finished", func() bool {
		depth, err := s.Depth(context.Background())
		return err == nil && depth[Delivered] == 2 && depth[Dead] == 2
	})
	require.NoError(t, stop())

	st := d.Stats()
	assert.Equal(t, map[int64]HookCounts{
		good.ID: {Delivered: 2},
		bad.ID:  {Failed: 2, Dead: 2},
	}, st.ByHook)
	count := map[int64]map[Outcome]int{}
	for _, r := range got {
		if count[r.HookID] == nil {
			count[r.HookID] = map[Outcome]int{}
		}
		count[r.HookID][r.Outcome]++
		if r.HookID == bad.ID {
			assert.Equal(t, http.StatusBadGateway, r.Status)
		}
		assert.GreaterOrEqual(t, r.Latency, time.Duration(0))
	}
	assert.Equal(t, map[int64]map[Outcome]int{
		good.ID: {OutcomeDelivered: 2},
		bad.ID:  {OutcomeFailed: 2, OutcomeDead: 2},
	}, count)
}

func TestCallRecordPingAndWriteProbe(t *testing.T) {
	ctx := context.Background()
	s, path := newStore(t)
	ev := SampleEvent(cdr.CallHangup, pbx, time.Date(2025, 7, 1, 18, 0, 55, 0, time.UTC))
	enqueue(t, s, ev)

	body, err := s.Call(ctx, ev.CallID)
	require.NoError(t, err)
	assert.Contains(t, string(body), `"event_type":"call_hangup"`)
	assert.Contains(t, string(body), `"uuid":"`+ev.CallID+`"`)
	_, err = s.Call(ctx, "no-such-call")
	assert.True(t, isNotFound(err))

	require.NoError(t, s.Ping(ctx))
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, s.CheckWritable(ctx))
	var n int
	require.NoError(t, s.db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'kanca_write_probe'").Scan(&n))
	assert.Zero(t, n, "the probe is rolled back")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	require.NoError(t, s.Close())
	assert.Error(t, s.Ping(ctx))
	assert.Error(t, s.CheckWritable(ctx))
}
