package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/ari/aritest"
	"github.com/kanca/kanca/cluster/clustertest"
)

// A listener (kanca run --nats) and a worker (kanca deliver) as their own
// processes, the hooks and the log through the commands with --nats: the
// recorded calls reach the hook added on the cluster, and the delivery
// log answers list, show and retry.
func TestManyPBXsCommands(t *testing.T) {
	nc := clustertest.Start(t, 1)
	url := nc.URL()
	dir := t.TempDir()

	var mu sync.Mutex
	got := map[string]int{} // delivery id -> times received
	var order []string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got[r.Header.Get("X-Kanca-Delivery")]++
		order = append(order, r.Header.Get("X-Kanca-Call")+" "+r.Header.Get("X-Kanca-Sequence"))
		mu.Unlock()
	}))
	defer rc.Close()
	received := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, c := range got {
			n += c
		}
		return n
	}

	r := kanca(t, dir, nil, "deliver")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "deliver needs a NATS cluster: --nats URL or KANCA_NATS_URL")

	r = kanca(t, dir, nil, "hooks", "add", "--nats", url, "--number", "908508850000", "--url", rc.URL+"/crm")
	require.Zero(t, r.code, r.stderr)
	assert.Contains(t, r.stderr, "hook 1 stored in the NATS cluster")
	r = kanca(t, dir, []string{"KANCA_NATS_URL=" + url}, "hooks", "list", "--json")
	require.Zero(t, r.code, r.stderr)
	var hs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &hs))
	require.Len(t, hs, 1)
	assert.Equal(t, rc.URL+"/crm", hs[0]["url"])
	r = kanca(t, dir, nil, "hooks", "list")
	assert.Equal(t, 1, r.code, "without --nats the local database is asked, and there is none")

	worker := startKanca(t, dir, []string{"KANCA_NATS_URL=" + url}, "deliver", "--lease", "2s", "--tz", "Europe/Istanbul")
	frames, err := aritest.LoadNDJSON(filepath.Join("..", "..", "testdata", "ari", "s11-five-concurrent", "events.ndjson"))
	require.NoError(t, err)
	ast := aritest.NewServer(aritest.Options{})
	defer ast.Close()
	ast.Play(frames...)
	listener := startKanca(t, dir, []string{"KANCA_ARI_PASSWORD=kanca", "KANCA_ARI_USER=kanca"}, "run", "--nats", url, "--ari-url", ast.URL,
		"--db", filepath.Join(dir, "listener.db"))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("kanca deliver:\n%s\nkanca run:\n%s", worker.stderr.String(), listener.stderr.String())
		}
	})
	waitUntil(t, "the five calls' webhooks", func() bool { return received() == 15 })

	r = kanca(t, dir, nil, "deliveries", "list", "--nats", url, "--json")
	require.Zero(t, r.code, r.stderr)
	var ds []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ds))
	require.Len(t, ds, 15)
	id := ds[0]["id"].(string)
	assert.Equal(t, "delivered", ds[0]["state"])
	r = kanca(t, dir, nil, "deliveries", "show", id, "--nats", url)
	require.Zero(t, r.code, r.stderr)
	assert.Contains(t, r.stdout, "200")
	r = kanca(t, dir, nil, "deliveries", "retry", id, "--nats", url)
	require.Zero(t, r.code, r.stderr)
	waitUntil(t, "the retried delivery", func() bool { return received() == 16 })
	mu.Lock()
	assert.Equal(t, 2, got[id], "a retry carries the delivery's id")
	mu.Unlock()

	r = kanca(t, dir, nil, "hooks", "disable", "1", "--nats", url)
	require.Zero(t, r.code, r.stderr)
	r = kanca(t, dir, nil, "hooks", "show", "1", "--nats", url, "--json")
	require.Zero(t, r.code, r.stderr)
	assert.Contains(t, r.stdout, `"enabled": false`)
	r = kanca(t, dir, nil, "hooks", "export", "--nats", url)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "local database only")

	listener.stop(t)
	stopped := worker.stop(t)
	assert.True(t, strings.Contains(stopped.stderr, "kanca deliver stopped"), stopped.stderr)
}

// A listener whose NATS does not answer says so at once, and that the call
// events wait meanwhile; it does not pass for one that forwards.
func TestListenerSaysNATSDoesNotAnswer(t *testing.T) {
	dir := t.TempDir()
	d := startKanca(t, dir, []string{"KANCA_ARI_PASSWORD=kanca", "KANCA_ARI_USER=kanca"}, "run", "--nats", "nats://127.0.0.1:1",
		"--ari-url", "http://127.0.0.1:1", "--db", filepath.Join(dir, "kanca.db"))
	waitUntil(t, "the warning", func() bool {
		return strings.Contains(d.stderr.String(), "no NATS server answers yet: call events wait in the local store")
	})
	assert.NotContains(t, d.stderr.String(), "forwarding call events to NATS")
	d.stop(t)
}
