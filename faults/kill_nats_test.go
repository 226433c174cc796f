package faults

import (
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/bench"
	"github.com/kanca/kanca/cluster/clustertest"
)

// startWorker starts `kanca deliver` on the cluster at url.
func startWorker(t *testing.T, url string) *daemon {
	t.Helper()
	return startProcess(t, exec.Command(kancaBin, "deliver", "--nats", url, "--lease", "2s", "--tz", "UTC", "--log-level", "warn"))
}

// TestKillUnderLoad, with kanca on a three-node NATS cluster: the
// listener beside the PBX (kanca run --nats) is killed -9 (once stopped
// with SIGTERM) while Asterisk goes on, and each time one of the two
// delivery workers (kanca deliver) is killed -9 and started again. The
// receiver must get what a kanca that never stopped sends, by the same
// rules as the single machine: every call, in order, a repeat under the
// same delivery id and body.
func TestKillUnderLoadNATS(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("needs POSIX signals")
	}
	frames, err := bench.Script(filepath.Join("..", "testdata", "ari"), killMix, 120, 10)
	require.NoError(t, err)
	want := expected(t, frames)

	nc := clustertest.Start(t, 3)
	url := nc.URL()
	ast := aritest.NewServer(aritest.Options{Pace: 150 * time.Microsecond})
	t.Cleanup(ast.Close)
	recv := newReceiver(t)
	db := filepath.Join(t.TempDir(), "listener.db")
	numbers := map[string]bool{}
	for _, c := range want {
		numbers[c.number] = true
	}
	for n := range numbers {
		run(t, db, "hooks", "add", "--nats", url, "--number", n, "--url", recv.URL+"/hook")
	}
	workers := []*daemon{startWorker(t, url), startWorker(t, url)}
	ast.Play(frames...)

	// Each time the listener stops, one of the workers is killed -9 and
	// started again too.
	first := true
	windows, d := stopsUnderLoad(t, ast, len(frames), 3, func(rng *rand.Rand) *daemon {
		if !first {
			w := rng.IntN(len(workers))
			workers[w].stop(t, false)
			workers[w] = startWorker(t, url)
		}
		first = false
		return startRun(t, db, "--ari-url", ast.URL, "--ari-user", "kanca", "--nats", url)
	})
	defer d.logOnFailure(t)
	tally := judge(t, recv, want, windows, true)
	require.Positive(t, tally.exact)
}
