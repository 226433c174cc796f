package faults

import (
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
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

// natsRig is a three-node cluster, a fake Asterisk with calls of the
// recorded mix to play at pace, a receiver hooked on every number of
// them (in the cluster), and the listener's database path.
func natsRig(t *testing.T, calls int, pace time.Duration) (frames [][]byte, want map[string]*call, url string, ast *aritest.Server, recv *receiver, db string) {
	t.Helper()
	frames, err := bench.Script(filepath.Join("..", "testdata", "ari"), killMix, calls, 10)
	require.NoError(t, err)
	want = expected(t, frames)
	url = clustertest.Start(t, 3).URL()
	ast = aritest.NewServer(aritest.Options{Pace: pace})
	t.Cleanup(ast.Close)
	recv = newReceiver(t)
	db = filepath.Join(t.TempDir(), "listener.db")
	numbers := map[string]bool{}
	for _, c := range want {
		numbers[c.number] = true
	}
	for n := range numbers {
		run(t, db, "hooks", "add", "--nats", url, "--number", n, "--url", recv.URL+"/hook")
	}
	return frames, want, url, ast, recv, db
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
	frames, want, url, ast, recv, db := natsRig(t, 120, 150*time.Microsecond)
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

// TestWorkerHangsUnderLoadNATS: one of three `kanca deliver` processes
// is stopped with SIGSTOP under load (a hung process: its sockets stay
// open, it answers nothing) until its leases have long expired and the
// other two have delivered every call, its partitions' included; then
// SIGCONT. Woken, it must not send for the partitions it lost: whatever
// it still sends is a repeat under the same delivery id and body, and
// every call's events arrived in order.
func TestWorkerHangsUnderLoadNATS(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("needs POSIX signals")
	}
	// Paced so the load lasts well past the hung worker's leases.
	frames, want, url, ast, recv, db := natsRig(t, 160, time.Millisecond)
	workers := []*daemon{startWorker(t, url), startWorker(t, url), startWorker(t, url)}
	d := startRun(t, db, "--ari-url", ast.URL, "--ari-user", "kanca", "--nats", url)
	defer d.logOnFailure(t)
	waitUntil(t, "kanca to connect", 20*time.Second, ast.Connected)
	ast.Play(frames...)
	waitUntil(t, "the first deliveries", 30*time.Second, func() bool { return len(recv.snapshot()) >= 20 })

	for i, w := range workers {
		select {
		case err := <-w.done:
			t.Fatalf("worker %d exited by itself under load (%v):\n%s", i, err, w.log)
		default:
		}
	}
	hung := workers[rand.IntN(len(workers))]
	require.NoError(t, hung.cmd.Process.Signal(syscall.SIGSTOP))
	stopped := time.Now()
	stoppedAt := len(recv.snapshot())
	waitUntil(t, "Asterisk to send every frame", 120*time.Second, func() bool { return ast.Pos() == len(frames) })
	waitUntil(t, "every call's hangup while the worker hangs", 120*time.Second, func() bool {
		hungUp := map[string]bool{}
		for _, g := range recv.snapshot() {
			if g.event == "call_hangup" {
				hungUp[g.call] = true
			}
		}
		return len(hungUp) >= len(want)
	})
	// And whatever else is due: a quiet spell of 3 s, with the leases
	// (2 s) long gone, means the other two have sent everything.
	before := -1
	for before != len(recv.snapshot()) {
		before = len(recv.snapshot())
		time.Sleep(3 * time.Second)
	}
	t.Logf("worker hung at %d POSTs; the other two took its partitions and reached %d POSTs in %s",
		stoppedAt, before, time.Since(stopped).Round(time.Millisecond))
	require.NoError(t, hung.cmd.Process.Signal(syscall.SIGCONT))
	time.Sleep(5 * time.Second) // time for the woken worker to send, were it to

	// Whatever arrived after the wake is a repeat of an event already
	// delivered, under its delivery id (judge holds the ids and bodies).
	all := recv.snapshot()
	seen := map[[2]string]string{}
	for _, g := range all[:before] {
		seen[[2]string{g.call, strconv.Itoa(g.seq)}] = g.delivery
	}
	for _, g := range all[before:] {
		id, ok := seen[[2]string{g.call, strconv.Itoa(g.seq)}]
		require.True(t, ok, "call %s event %d (%s) first sent after the hung worker woke", g.call, g.seq, g.event)
		require.Equal(t, id, g.delivery, "call %s event %d: the woken worker sent it under another delivery id", g.call, g.seq)
	}
	t.Logf("%d POSTs after the worker woke (repeats under the same id)", len(all)-before)
	tally := judge(t, recv, want, nil, true)
	require.Equal(t, len(want), tally.exact, "every call exact")
}
