package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cluster/clustertest"
	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
	"github.com/kanca/kanca/replay"
)

// recording is what one listener's PBX plays: recorded calls, one after
// another, as one stream.
type recording struct {
	frames [][]byte
	path   string // the same frames as a file, for kanca replay
}

func loadRecording(t *testing.T, keep float64, scenarios ...string) recording {
	t.Helper()
	var rec recording
	for _, s := range scenarios {
		name := filepath.Join("..", "testdata", s, "events.ndjson")
		if _, err := os.Stat(name); err != nil {
			name += ".gz"
		}
		frames, err := aritest.LoadNDJSON(name)
		require.NoError(t, err)
		rec.frames = append(rec.frames, frames[:int(float64(len(frames))*keep)]...)
	}
	rec.path = filepath.Join(t.TempDir(), "events.ndjson")
	require.NoError(t, os.WriteFile(rec.path, append(bytes.Join(rec.frames, []byte("\n")), '\n'), 0o600))
	return rec
}

var turkey = func() *time.Location {
	l, err := time.LoadLocation("Europe/Istanbul")
	if err != nil {
		panic(err)
	}
	return l
}()

// replayed is what kanca replay prints for a recording, by call: the
// bodies in order, with the number each call's events are for.
func replayed(t *testing.T, rec recording) (byCall map[string][]map[string]any, number map[string]string) {
	t.Helper()
	var out bytes.Buffer
	_, err := replay.Files([]string{rec.path}, nil, &out, replay.Options{Decode: ari.Decode, Tracker: cdr.DefaultConfig(),
		Format: formats.Options{Location: turkey}})
	require.NoError(t, err)
	byCall, number = map[string][]map[string]any{}, map[string]string{}
	// The bodies do not say which number a call is for; the tracker's
	// events do.
	ins, err := replay.Inputs(rec.path, ari.Decode, nil)
	require.NoError(t, err)
	tr := cdr.NewTracker(cdr.DefaultConfig())
	for _, in := range ins {
		for _, ev := range tr.Handle(in) {
			number[ev.CallID] = ev.Number
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var b map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &b))
		call := b["uuid"].(string)
		byCall[call] = append(byCall[call], b)
	}
	return byCall, number
}

// startListener runs kanca run --nats's pipeline against a fake Asterisk
// playing rec, forwarding to the server at url.
func startListener(t *testing.T, url string, rec recording) (stop func()) {
	t.Helper()
	ast := aritest.NewServer(aritest.Options{})
	t.Cleanup(ast.Close)
	store, o := listenerStore(t)
	log := quiet()
	src, err := ari.New(ari.Config{URL: ast.URL, User: "kanca", Password: "kanca", Logger: log,
		Backoff: ari.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}})
	require.NoError(t, err)
	p := &pipeline.Pipeline{
		Source:     src,
		Tracker:    cdr.NewTracker(cdr.DefaultConfig()),
		Outbox:     o,
		Dispatcher: &cluster.Forwarder{Store: store, Conn: connect(t, url), Logger: log},
		Journal:    store,
		Logger:     log,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	// The calls start once kanca has listed the channels at connect, as
	// a listener already running sees them: played before, a loaded
	// machine read them behind the list later than its settle and told
	// them as adopted, a step's time from the listed channel.
	waitFor(t, "the listener to connect", 20*time.Second, func() bool { return ast.Listings() > 0 })
	ast.Play(rec.frames...)
	return stop
}

// bodies decodes what a receiver got for one hook path, by call, repeats
// of a delivery id dropped.
func (rc *receiver) bodies(t *testing.T, path string) map[string][]map[string]any {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string][]map[string]any{}
	for k, gs := range rc.calls {
		if !strings.HasPrefix(k, path+" ") {
			continue
		}
		seen := map[string]bool{}
		for _, g := range gs {
			if seen[g.id] {
				continue
			}
			seen[g.id] = true
			var b map[string]any
			require.NoError(t, json.Unmarshal([]byte(g.body), &b))
			call := strings.TrimPrefix(k, path+" ")
			out[call] = append(out[call], b)
		}
	}
	return out
}

// Three listeners, each beside its own PBX and its own NATS server of a
// three-node cluster (replicas 3), three workers on the three servers:
// every hook gets every call's webhooks exactly as kanca replay prints
// them, in order per call, once per delivery id, and the calls are
// spread over the workers.
func TestClusterDeliversWhatReplayPrints(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node cluster")
	}
	nc := clustertest.Start(t, 3)
	urls := []string{nc.Servers[0].URL(), nc.Servers[1].URL(), nc.Servers[2].URL()}
	recs := []recording{
		loadRecording(t, 0.15, "ari-load/run1_10cps"),
		loadRecording(t, 1, "ari/s11-five-concurrent", "ari/s12-ring-group", "ari/s07-queue-member-answers", "ari/s09-inbound-fax"),
		loadRecording(t, 1, "ari/t01_attended_transfer_star2", "ari/t02_blind_transfer_hashhash", "ari/t03_call_pickup_star8",
			"ari/t04_park_and_retrieve", "ari/t05_voicemail_after_no_answer", "ari/s06-ivr-menu-dtmf-to-extension"),
	}
	want := map[string][]map[string]any{}
	numberOf := map[string]string{}
	for _, r := range recs {
		byCall, number := replayed(t, r)
		for c, bs := range byCall {
			require.NotContains(t, want, c, "a call in two recordings")
			want[c] = bs
			numberOf[c] = number[c]
		}
	}
	numbers := map[string]bool{}
	total := 0
	for c, bs := range want {
		numbers[numberOf[c]] = true
		total += len(bs)
	}
	rc := newReceiver(t)
	// Every number gets a hook; the load's number a second one.
	var paths []string
	for n := range numbers {
		addHook(t, urls[0], hooks.Hook{Number: n, URL: rc.URL + "/n" + n})
		paths = append(paths, "/n"+n)
	}
	addHook(t, urls[1], hooks.Hook{Number: "908508850000", URL: rc.URL + "/second"})
	enc := hooks.Encoding{Location: turkey}
	var workers []*cluster.Worker
	for i, u := range urls {
		w, err := cluster.NewWorker(context.Background(), connect(t, u), cluster.WorkerOptions{ID: fmt.Sprintf("w%d", i+1),
			Encoding: enc, Logger: quiet(), LeaseTTL: 3 * time.Second})
		require.NoError(t, err)
		workers = append(workers, w)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.Run(ctx) }()
		t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	}
	second := 0
	for c, bs := range want {
		if numberOf[c] == "908508850000" {
			second += len(bs)
		}
	}
	for i, r := range recs {
		startListener(t, urls[i], r)
	}
	waitFor(t, "every webhook", 3*time.Minute, func() bool { return rc.count() == total+second })
	time.Sleep(300 * time.Millisecond) // a repeat would arrive now
	require.Equal(t, total+second, rc.count(), "deliveries by id")

	got := map[string][]map[string]any{}
	for _, p := range paths {
		for c, bs := range rc.bodies(t, p) {
			got[c] = bs
		}
	}
	require.Equal(t, len(want), len(got), "calls")
	for c, bs := range want {
		require.Equal(t, bs, got[c], "call %s", c)
	}
	for c, bs := range rc.bodies(t, "/second") {
		require.Equal(t, want[c], bs, "second hook, call %s", c)
	}
	rc.mu.Lock()
	for id, n := range rc.got {
		require.Equal(t, 1, n, "delivery %s sent once", id)
	}
	rc.mu.Unlock()
	rc.checkOrder()
	var spread []int64
	for _, w := range workers {
		spread = append(spread, w.Stats().Delivered)
	}
	sort.Slice(spread, func(i, j int) bool { return spread[i] < spread[j] })
	t.Logf("deliveries per worker: %v of %d", spread, total+second)
	assert.Positive(t, spread[0], "every worker delivered some calls")
}
