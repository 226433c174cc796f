package bench

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/hooks"
)

// postBaseline POSTs n of the run's bodies to the same receiver with a
// plain Go client and workers at once: what the machine can do without
// kanca in the way.
func postBaseline(ctx context.Context, bodies []body, n, workers int) (Baseline, error) {
	if len(bodies) == 0 || n <= 0 {
		return Baseline{}, errors.New("no bodies to send")
	}
	workers = max(workers, 1)
	recv, err := startReceiver(time.Second, 0)
	if err != nil {
		return Baseline{}, err
	}
	defer recv.close()
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: workers,
	}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	url := recv.url + "/base"
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || ctx.Err() != nil {
					return
				}
				b := bodies[i%int64(len(bodies))]
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b.data))
				if err == nil {
					req.Header.Set("Content-Type", b.contentType)
					req.Header.Set("X-Kanca-Delivery", strconv.FormatInt(i, 10))
					var resp *http.Response
					if resp, err = client.Do(req); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode/100 != 2 {
							err = fmt.Errorf("HTTP %d", resp.StatusCode)
						}
					}
				}
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		return Baseline{}, firstErr
	}
	return Baseline{Count: n, Concurrency: workers, Elapsed: el, PerSec: float64(n) / el.Seconds()}, nil
}

// sqliteRowsPerTx is the outbox's largest group commit.
const sqliteRowsPerTx = 256

// sqliteBaseline inserts n outbox rows of the run's bodies into a fresh
// database with kanca's schema and pragmas, in plain transactions of
// sqliteRowsPerTx rows.
func sqliteBaseline(ctx context.Context, bodies []body, n, nhooks int) (Baseline, error) {
	if len(bodies) == 0 || n <= 0 {
		return Baseline{}, errors.New("no bodies to insert")
	}
	dir, err := os.MkdirTemp("", "kanca-bench-sqlite-")
	if err != nil {
		return Baseline{}, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "kanca.db")
	// The schema, and hooks for the rows to reference, as kanca makes them.
	st, err := hooks.Open(path)
	if err != nil {
		return Baseline{}, err
	}
	nhooks = max(nhooks, 1)
	var ids []int64
	for i := range nhooks {
		h, err := st.AddHook(ctx, hooks.Hook{Number: strconv.Itoa(908508850000 + i), URL: "http://127.0.0.1:1/",
			Format: formats.JSON, Events: hooks.AllEvents(), Enabled: true})
		if err != nil {
			st.Close()
			return Baseline{}, err
		}
		ids = append(ids, h.ID)
	}
	if err := st.Close(); err != nil {
		return Baseline{}, err
	}
	// The same connection settings as hooks.Open.
	db, err := sql.Open("sqlite3", path+"?_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate")
	if err != nil {
		return Baseline{}, err
	}
	defer db.Close()
	start := time.Now()
	for i := 0; i < n; {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return Baseline{}, err
		}
		for end := min(i+sqliteRowsPerTx, n); i < end; i++ {
			b := bodies[i%len(bodies)]
			now := time.Now().UnixMilli()
			if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (id, hook_id, call_uuid, seq, event, body, content_type,
				state, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				"b"+strconv.Itoa(i), ids[i%len(ids)], "call-"+strconv.Itoa(i/5), i%5+1, "call_hangup", b.data,
				b.contentType, string(hooks.Pending), now, now, now); err != nil {
				tx.Rollback()
				return Baseline{}, err
			}
		}
		if err := tx.Commit(); err != nil {
			return Baseline{}, err
		}
	}
	el := time.Since(start)
	return Baseline{Count: n, Concurrency: sqliteRowsPerTx, Elapsed: el, PerSec: float64(n) / el.Seconds()}, nil
}
