package hooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kanca/kanca/cdr"
)

// BenchmarkDelivery measures the delivery stage: b.N events of calls
// three events long, for one hook, committed to the outbox while the
// dispatcher sends them and records every attempt. Plain is the same
// receiver fed by a plain client: each runs on 1 and on 8 connections
// (the hook's max in flight, the client's workers), so compare the
// deliveries/s of like with like.
//
//	go test ./hooks -run '^$' -bench Delivery -benchtime 20000x
func BenchmarkDelivery(b *testing.B) {
	const perCall = 3
	var got atomic.Int64
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
		select {
		case arrived <- struct{}{}:
		default:
		}
	}))
	defer srv.Close()
	wait := func(n int64) {
		for got.Load() < n {
			<-arrived
		}
	}

	for _, conns := range []int{1, 8} {
		b.Run(fmt.Sprintf("kanca/conns=%d", conns), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "kanca.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if _, err := s.AddHook(context.Background(), Hook{Number: pbx, URL: srv.URL, MaxInFlight: conns}); err != nil {
				b.Fatal(err)
			}
			units := make([]Unit, 0, b.N)
			for i := range b.N {
				units = append(units, Unit{Events: []cdr.Event{event(fmt.Sprint("call-", i/perCall), i%perCall+1, cdr.CallInit)}})
			}
			o := NewOutbox(s, OutboxOptions{})
			d := NewDispatcher(s, DispatchOptions{Logger: quiet})
			ctx, stop := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			got.Store(0)
			b.ResetTimer()
			for i := 0; i < len(units); i += 512 {
				if _, err := o.Commit(context.Background(), units[i:min(i+512, len(units))]); err != nil {
					b.Fatal(err)
				}
			}
			wait(int64(b.N))
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
			stop()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})

		b.Run(fmt.Sprintf("plain/conns=%d", conns), func(b *testing.B) {
			body := bytes.Repeat([]byte("x"), 600)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
			defer client.CloseIdleConnections()
			got.Store(0)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						resp, err := client.Post(srv.URL, "application/json", bytes.NewReader(body))
						if err != nil {
							b.Error(err)
							return
						}
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
		})
	}
}
