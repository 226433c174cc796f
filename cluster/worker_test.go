package cluster_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cluster/clustertest"
	"github.com/kanca/kanca/hooks"
)

// receiver records what reached it, per call, and checks that each call's
// deliveries come in sequence per hook path.
type receiver struct {
	*httptest.Server
	t  *testing.T
	mu sync.Mutex
	// got is every request by delivery id; calls each hook's deliveries
	// per call in arrival order.
	got   map[string]int
	calls map[string][]got
	// status answers a request (200 unless set).
	status atomic.Pointer[func(r *http.Request) int]
}

func (rc *receiver) answer(f func(r *http.Request) int) { rc.status.Store(&f) }

type got struct {
	id, event, path string
	seq             int
	body            string
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t, got: map[string]int{}, calls: map[string][]got{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		code := http.StatusOK
		if f := rc.status.Load(); f != nil {
			code = (*f)(r)
		}
		if code == http.StatusOK {
			seq, _ := strconv.Atoi(r.Header.Get("X-Kanca-Sequence"))
			rc.mu.Lock()
			rc.got[r.Header.Get("X-Kanca-Delivery")]++
			k := r.URL.Path + " " + r.Header.Get("X-Kanca-Call")
			rc.calls[k] = append(rc.calls[k], got{r.Header.Get("X-Kanca-Delivery"), r.Header.Get("X-Kanca-Event"), r.URL.Path, seq, string(b)})
			rc.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// checkOrder: every call's deliveries to one hook arrived in sequence.
func (rc *receiver) checkOrder() {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for k, gs := range rc.calls {
		last := 0
		seen := map[string]bool{}
		for _, g := range gs {
			if seen[g.id] {
				continue // a repeat of one answered before: same id, allowed
			}
			seen[g.id] = true
			require.Greater(rc.t, g.seq, last, "%s: out of order: %v", k, gs)
			last = g.seq
		}
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func startWorker(t *testing.T, url string, o cluster.WorkerOptions) (stop func()) {
	t.Helper()
	c := connect(t, url)
	if o.Logger == nil {
		o.Logger = quiet()
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 2 * time.Second
	}
	w, err := cluster.NewWorker(context.Background(), c, o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

func addHook(t *testing.T, url string, h hooks.Hook) hooks.Hook {
	t.Helper()
	c := connect(t, url)
	hs, err := c.Hooks(context.Background())
	require.NoError(t, err)
	h, err = hs.AddHook(context.Background(), h)
	require.NoError(t, err)
	return h
}

func TestWorkersDeliverEachOnceInOrderPerCall(t *testing.T) {
	ns := clustertest.Start(t, 1)
	rc := newReceiver(t)
	addHook(t, ns.URL(), hooks.Hook{Number: "902120000000", URL: rc.URL + "/a"})
	addHook(t, ns.URL(), hooks.Hook{Number: "902120000000", URL: rc.URL + "/b"})
	addHook(t, ns.URL(), hooks.Hook{Number: "902129999999", URL: rc.URL + "/other"})
	startWorker(t, ns.URL(), cluster.WorkerOptions{ID: "w1"})
	startWorker(t, ns.URL(), cluster.WorkerOptions{ID: "w2"})

	s, o := listenerStore(t)
	runForwarder(t, &cluster.Forwarder{Store: s, Conn: connect(t, ns.URL()), Logger: quiet()})
	commitCalls(t, o, "x", 40, 5)
	waitFor(t, "every delivery", 30*time.Second, func() bool { return rc.count() == 40*5*2 })
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 400, rc.count())
	rc.checkOrder()
	rc.mu.Lock()
	ids := []string{}
	for id, n := range rc.got {
		require.Equal(t, 1, n, "delivery %s", id)
		ids = append(ids, id)
	}
	rc.mu.Unlock()

	// The log has each delivery, from any node; the stream lets go of
	// the events every hook has.
	c := connect(t, ns.URL())
	l, err := c.Log(context.Background())
	require.NoError(t, err)
	for _, id := range ids[:10] {
		d, tries, err := l.Delivery(context.Background(), id)
		require.NoError(t, err)
		require.Equal(t, hooks.Delivered, d.State)
		require.Len(t, tries, 1)
		require.Equal(t, http.StatusOK, tries[0].Status)
	}
	st, err := c.Stream(context.Background())
	require.NoError(t, err)
	waitFor(t, "the done events purged", 10*time.Second, func() bool {
		info, err := st.Info(context.Background())
		require.NoError(t, err)
		return info.State.Msgs == 0
	})
}
