package bench

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// kanca bench --nats runs every measure it reports on a small load: the
// drains deliver their whole backlog, both loads every webhook.
func TestNATSPhaseDeliversEverything(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node cluster")
	}
	o := Options{Traces: filepath.Join("..", "testdata", "ari"), Calls: 30, Rate: 60, NATS: true, Timeout: 2 * time.Minute}
	rep, err := Run(context.Background(), o)
	require.NoError(t, err)
	n := rep.NATS
	require.Len(t, n.Drains, len(natsWorkers))
	for _, d := range n.Drains {
		require.EqualValues(t, 30*drainEvents, d.Deliveries, "%d workers", d.Workers)
		require.Positive(t, d.CPUPerDelivery)
	}
	require.EqualValues(t, 30*drainEvents, n.Single.Deliveries)
	require.Equal(t, n.Load.Expected, n.Load.Delivered)
	require.Equal(t, n.SingleLoad.Expected, n.SingleLoad.Delivered)
	require.Positive(t, n.Load.Hangups)
	require.Positive(t, n.Load.P99)
}
