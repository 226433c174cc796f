package bench

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// body is one webhook as the receiver got it, kept for the POST baseline.
type body struct {
	data        []byte
	contentType string
}

// receiver is the local webhook endpoint: /fast answers at once, /slow
// after SlowDelay, /base is the baseline's target (same work as /fast).
type receiver struct {
	srv       *http.Server
	url       string
	slowDelay time.Duration
	keep      int // bodies kept for the baseline
	onHangup  func(call string, at time.Time)
	// onSlowHangup is onHangup for /slow, which answers after slowDelay.
	onSlowHangup func(call string, at time.Time)

	arrived chan struct{}
	fast    atomic.Int64
	slow    atomic.Int64
	base    atomic.Int64

	mu     sync.Mutex
	ids    map[string]bool
	dups   int
	last   time.Time
	bodies []body
}

func startReceiver(slowDelay time.Duration, keep int) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench receiver: %w", err)
	}
	r := &receiver{url: "http://" + ln.Addr().String(), slowDelay: slowDelay, keep: keep,
		arrived: make(chan struct{}, 1), ids: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /fast", r.serveFast)
	mux.HandleFunc("POST /slow", r.serveSlow)
	mux.HandleFunc("POST /base", r.serveBase)
	r.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

func (r *receiver) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if r.srv.Shutdown(ctx) != nil {
		r.srv.Close()
	}
}

func (r *receiver) serveFast(w http.ResponseWriter, req *http.Request) {
	data, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	now := time.Now()
	id := req.Header.Get("X-Kanca-Delivery")
	r.mu.Lock()
	if r.ids[id] {
		r.dups++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
		return
	}
	r.ids[id] = true
	r.last = now
	if len(r.bodies) < r.keep {
		r.bodies = append(r.bodies, body{data: data, contentType: req.Header.Get("Content-Type")})
	}
	r.mu.Unlock()
	if req.Header.Get("X-Kanca-Event") == "call_hangup" && r.onHangup != nil {
		r.onHangup(req.Header.Get("X-Kanca-Call"), now)
	}
	r.fast.Add(1)
	w.WriteHeader(http.StatusNoContent)
	select {
	case r.arrived <- struct{}{}:
	default:
	}
}

func (r *receiver) serveSlow(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, io.LimitReader(req.Body, 1<<20))
	t := time.NewTimer(r.slowDelay)
	defer t.Stop()
	select {
	case <-t.C:
		if req.Header.Get("X-Kanca-Event") == "call_hangup" && r.onSlowHangup != nil {
			r.onSlowHangup(req.Header.Get("X-Kanca-Call"), time.Now())
		}
		r.slow.Add(1)
		w.WriteHeader(http.StatusNoContent)
	case <-req.Context().Done():
	}
}

func (r *receiver) serveBase(w http.ResponseWriter, req *http.Request) {
	data, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The same bookkeeping /fast does, so the baseline is not flattered.
	id := req.Header.Get("X-Kanca-Delivery")
	r.mu.Lock()
	_ = r.ids[id]
	_ = data
	r.mu.Unlock()
	r.base.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// snapshot returns the dedupe counters and the kept bodies.
func (r *receiver) snapshot() (dups int, last time.Time, bodies []body) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dups, r.last, r.bodies
}
