package hooks

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// State is where a delivery is in its life.
type State string

const (
	Pending   State = "pending"   // not tried yet
	Retrying  State = "retrying"  // tried, failed, due again at NextAttempt
	Delivered State = "delivered" // a 2xx came back
	Dead      State = "dead"      // given up: kept, listed, replayable
	// Held is an event of a hook that was disabled when it happened: kept
	// until the hook is enabled (then pending) or the held are discarded.
	Held State = "held"
)

// ParseState accepts the five state names.
func ParseState(s string) (State, error) {
	switch st := State(strings.ToLower(strings.TrimSpace(s))); st {
	case Pending, Retrying, Delivered, Dead, Held:
		return st, nil
	case "queued":
		// kanca status's QUEUED column: two states, listed one at a time.
		return "", fmt.Errorf("state %q is two: list pending (not tried yet) and retrying (tried, due again) one at a time", s)
	}
	return "", fmt.Errorf("unknown state %q (known: pending, retrying, delivered, dead, held)", s)
}

// Delivery is one event bound for one hook.
type Delivery struct {
	ID          string    `json:"id"` // stable across retries: receivers drop duplicates by it
	HookID      int64     `json:"hook_id"`
	CallID      string    `json:"call"`
	Seq         int       `json:"seq"`
	Event       string    `json:"event"` // as sent
	Body        []byte    `json:"-"`
	ContentType string    `json:"content_type"`
	State       State     `json:"state"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastStatus  int       `json:"last_status,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`

	n int64 // enqueue order
}

// Attempt is one logged try of a delivery.
type Attempt struct {
	At       time.Time     `json:"at"`
	Status   int           `json:"status,omitempty"` // 0: no response
	Latency  time.Duration `json:"latency_ns"`
	Response string        `json:"response,omitempty"` // the first KiB of the body
	Error    string        `json:"error,omitempty"`
}

// Filter selects deliveries; zero fields select all.
type Filter struct {
	HookID int64
	State  State
	CallID string
	Limit  int // 0: DefaultListLimit
}

// DefaultListLimit bounds a listing when the caller gives no limit.
const DefaultListLimit = 100

// newDeliveryID returns a UUIDv7: random enough to be unique across
// restarts and servers, and sorted by creation time for people reading lists.
func newDeliveryID(now time.Time) string {
	var u [16]byte
	if _, err := rand.Read(u[6:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported systems
	}
	t := uint64(now.UnixMilli())
	for i := 5; i >= 0; i-- {
		u[i] = byte(t)
		t >>= 8
	}
	u[6] = u[6]&0x0f | 0x70
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

const deliveryColumns = `n, id, hook_id, call_uuid, seq, event, body, content_type, state, attempts,
	next_attempt_at, last_status, last_error, created_at, updated_at`

func scanDelivery(sc interface{ Scan(...any) error }) (Delivery, error) {
	var d Delivery
	var next, created, updated int64
	err := sc.Scan(&d.n, &d.ID, &d.HookID, &d.CallID, &d.Seq, &d.Event, &d.Body, &d.ContentType, &d.State,
		&d.Attempts, &next, &d.LastStatus, &d.LastError, &created, &updated)
	if err != nil {
		return Delivery{}, err
	}
	d.NextAttempt, d.Created, d.Updated = fromMS(next), fromMS(created), fromMS(updated)
	return d, nil
}

func (s *Store) queryDeliveries(ctx context.Context, q string, args ...any) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Deliveries lists deliveries matching f, newest first.
func (s *Store) Deliveries(ctx context.Context, f Filter) ([]Delivery, error) {
	var where []string
	var args []any
	if f.HookID != 0 {
		where, args = append(where, "hook_id = ?"), append(args, f.HookID)
	}
	if f.State != "" {
		where, args = append(where, "state = ?"), append(args, string(f.State))
	}
	if f.CallID != "" {
		where, args = append(where, "call_uuid = ?"), append(args, f.CallID)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	q := "SELECT " + deliveryColumns + " FROM outbox"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY n DESC LIMIT ?"
	out, err := s.queryDeliveries(ctx, q, append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	return out, nil
}

// Delivery returns the delivery with id and its attempts, oldest first.
func (s *Store) Delivery(ctx context.Context, id string) (Delivery, []Attempt, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, "SELECT "+deliveryColumns+" FROM outbox WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Delivery{}, nil, fmt.Errorf("delivery %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delivery{}, nil, fmt.Errorf("get delivery %s: %w", id, err)
	}
	rows, err := s.db.QueryContext(ctx, "SELECT at, status, latency_ms, response, error FROM attempts WHERE delivery_id = ? ORDER BY id", id)
	if err != nil {
		return Delivery{}, nil, fmt.Errorf("get attempts of delivery %s: %w", id, err)
	}
	defer rows.Close()
	var atts []Attempt
	for rows.Next() {
		var a Attempt
		var at, lat int64
		var resp []byte
		if err := rows.Scan(&at, &a.Status, &lat, &resp, &a.Error); err != nil {
			return Delivery{}, nil, fmt.Errorf("get attempts of delivery %s: %w", id, err)
		}
		a.At, a.Latency, a.Response = fromMS(at), time.Duration(lat)*time.Millisecond, string(resp)
		atts = append(atts, a)
	}
	if err := rows.Err(); err != nil {
		return Delivery{}, nil, fmt.Errorf("get attempts of delivery %s: %w", id, err)
	}
	return d, atts, nil
}

// Retry queues the delivery with id to be sent now with a fresh retry
// schedule, whatever its state: a delivered one is sent again (same id).
func (s *Store) Retry(ctx context.Context, id string) error {
	// next_attempt_at 0 means due at once whatever the dispatcher's clock.
	res, err := s.db.ExecContext(ctx, `UPDATE outbox SET state = ?, attempts = 0, next_attempt_at = 0,
		updated_at = ? WHERE id = ?`, string(Pending), ms(time.Now()), id)
	if err != nil {
		return fmt.Errorf("retry delivery %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("delivery %q: %w", id, ErrNotFound)
	}
	s.notify()
	return nil
}

// RetryDeadBatch is how many dead deliveries RetryDead requeues per
// transaction. SQLite has one writer: a requeue of a million rows in one
// transaction would hold the outbox and the dispatcher for its whole run,
// and would leave nothing to report progress on.
const RetryDeadBatch = 500

// RetryDead requeues every dead delivery, of one hook when hookID is not 0,
// and returns how many. See RetryDeadProgress.
func (s *Store) RetryDead(ctx context.Context, hookID int64) (int, error) {
	return s.RetryDeadProgress(ctx, hookID, nil)
}

// RetryDeadProgress is RetryDead telling progress, when not nil, after
// each committed batch: done requeued so far, of total found dead at the
// start. It takes the deliveries in enqueue order, RetryDeadBatch per
// transaction, so an interrupted run keeps what it committed and a second
// run finishes the rest; deliveries that die while it runs wait for the
// next run.
func (s *Store) RetryDeadProgress(ctx context.Context, hookID int64, progress func(done, total int)) (int, error) {
	return s.retryDead(ctx, hookID, RetryDeadBatch, progress)
}

func (s *Store) retryDead(ctx context.Context, hookID int64, batch int, progress func(done, total int)) (int, error) {
	// The filter is written twice. The count reads it from an index. The
	// batches must walk the primary key instead, from where the previous
	// batch ended: through an index on state, each batch would read every
	// remaining dead row and sort them, quadratic in their number. Unary +
	// keeps SQLite from choosing those indexes.
	where, walk, args := "state = ?", "+state = ?", []any{string(Dead)}
	if hookID != 0 {
		if _, err := s.GetHook(ctx, hookID); err != nil {
			return 0, err
		}
		where, walk, args = where+" AND hook_id = ?", walk+" AND +hook_id = ?", append(args, hookID)
	}
	var total int
	var first, last sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT count(*), min(n), max(n) FROM outbox WHERE "+where, args...).Scan(&total, &first, &last); err != nil {
		return 0, fmt.Errorf("retry dead deliveries: count them: %w", err)
	}
	if total == 0 {
		return 0, nil
	}
	// The batches walk n, the enqueue order, up to the last delivery dead
	// at the start: each batch starts past the previous one, so the walk
	// ends even while the dispatcher kills deliveries behind it, and no
	// delivery dead at the start is passed over. In enqueue order, a
	// call's earlier events are requeued no later than its later ones, so
	// a running dispatcher does not send a later event while an earlier
	// one still waits for its batch.
	done, after := 0, first.Int64-1
	for after < last.Int64 {
		if err := ctx.Err(); err != nil {
			return done, fmt.Errorf("retry dead deliveries: stopped after %d of %d: %w", done, total, err)
		}
		n, upTo, err := s.retryDeadBatch(ctx, walk, args, after, last.Int64, batch)
		if err != nil {
			return done, fmt.Errorf("retry dead deliveries: after %d of %d: %w", done, total, err)
		}
		if n == 0 {
			break // the rest were requeued by someone else meanwhile
		}
		done, after = done+n, upTo
		s.notify()
		if progress != nil {
			// A delivery that died after the count, ahead of the walk,
			// is requeued too: never report more done than in all.
			progress(done, max(total, done))
		}
	}
	return done, nil
}

// retryDeadBatch requeues up to limit deliveries matching where with n in
// (after, last], in one transaction, and returns how many and the highest
// n among them.
func (s *Store) retryDeadBatch(ctx context.Context, where string, args []any, after, last int64, limit int) (int, int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback()
	keyed := where + " AND n > ? AND n <= ?"
	var upTo sql.NullInt64
	err = tx.QueryRowContext(ctx, "SELECT max(n) FROM (SELECT n FROM outbox WHERE "+keyed+" ORDER BY n LIMIT ?)",
		append(append([]any{}, args...), after, last, limit)...).Scan(&upTo)
	if err != nil || !upTo.Valid {
		return 0, 0, err
	}
	// The transaction holds the write lock since BEGIN (_txlock=immediate),
	// so the range holds exactly the rows just selected.
	res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, attempts = 0, next_attempt_at = 0, updated_at = ?
		WHERE `+keyed, append(append([]any{string(Pending), ms(time.Now())}, args...), after, upTo.Int64)...)
	if err != nil {
		return 0, 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, err
	}
	return int(n), upTo.Int64, nil
}

// Depth counts deliveries by state: Pending plus Retrying is the backlog.
func (s *Store) Depth(ctx context.Context) (map[State]int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT state, count(*) FROM outbox GROUP BY state")
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", err)
	}
	defer rows.Close()
	out := map[State]int{Pending: 0, Retrying: 0, Delivered: 0, Dead: 0, Held: 0}
	for rows.Next() {
		var st State
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("count deliveries: %w", err)
		}
		out[st] = n
	}
	return out, rows.Err()
}

// dueHeads returns up to limit deliveries of one hook that may be sent
// now: due, and first among the unfinished deliveries of their call to
// this hook, oldest due first. Their bodies are not read.
func (s *Store) dueHeads(ctx context.Context, hookID int64, now time.Time, limit int) ([]*entry, error) {
	return s.entries(ctx, `SELECT n, id, call_uuid, seq, event, NULL, content_type, state, attempts,
		next_attempt_at FROM outbox o INDEXED BY outbox_waiting
		WHERE o.hook_id = ? AND o.state IN ('pending', 'retrying') AND o.next_attempt_at <= ?
		AND NOT EXISTS (SELECT 1 FROM outbox p INDEXED BY outbox_waiting_call WHERE p.hook_id = o.hook_id AND p.call_uuid = o.call_uuid
			AND p.state IN ('pending', 'retrying') AND (p.seq < o.seq OR (p.seq = o.seq AND p.n < o.n)))
		ORDER BY o.next_attempt_at, o.n LIMIT ?`, hookID, hookID, ms(now), limit)
}

// waitingOfCalls returns every waiting delivery of the given calls to
// one hook, each call's in sequence.
func (s *Store) waitingOfCalls(ctx context.Context, hookID int64, calls []string) ([]*entry, error) {
	const chunk = 200 // well under SQLite's limit on parameters
	var out []*entry
	for len(calls) > 0 {
		part := calls[:min(chunk, len(calls))]
		calls = calls[len(part):]
		args := make([]any, 0, len(part)+1)
		args = append(args, hookID)
		for _, c := range part {
			args = append(args, c)
		}
		es, err := s.entries(ctx, `SELECT n, id, call_uuid, seq, event, body, content_type, state, attempts,
			next_attempt_at FROM outbox INDEXED BY outbox_waiting_call
			WHERE hook_id = ? AND state IN ('pending', 'retrying') AND call_uuid IN (?`+strings.Repeat(", ?", len(part)-1)+`)
			ORDER BY call_uuid, seq, n`, hookID, args...)
		if err != nil {
			return nil, err
		}
		out = append(out, es...)
	}
	return out, nil
}

// entries reads deliveries of one hook for the dispatcher's window.
func (s *Store) entries(ctx context.Context, q string, hookID int64, args ...any) ([]*entry, error) {
	rows, err := s.db.QueryContext(quick(ctx), q, args...)
	if err != nil {
		return nil, fmt.Errorf("read waiting deliveries of hook %d: %w", hookID, err)
	}
	defer rows.Close()
	var out []*entry
	for rows.Next() {
		e := &entry{Delivery: Delivery{HookID: hookID}}
		var next int64
		if err := rows.Scan(&e.n, &e.ID, &e.CallID, &e.Seq, &e.Event, &e.Body, &e.ContentType, &e.State, &e.Attempts, &next); err != nil {
			return nil, fmt.Errorf("read waiting deliveries of hook %d: %w", hookID, err)
		}
		e.NextAttempt = fromMS(next)
		e.due = e.NextAttempt
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read waiting deliveries of hook %d: %w", hookID, err)
	}
	return out, nil
}

// waitingUpTo counts the deliveries of one hook not yet finished, up to
// limit: enough to tell whether there are as many as expected.
func (s *Store) waitingUpTo(ctx context.Context, hookID int64, limit int) (int, error) {
	var n int
	err := s.db.QueryRowContext(quick(ctx), `SELECT count(*) FROM (SELECT 1 FROM outbox INDEXED BY outbox_waiting
		WHERE hook_id = ? AND state IN ('pending', 'retrying') LIMIT ?)`, hookID, limit).Scan(&n)
	return n, err
}

// changes is a number that moves whenever a hook changes or a delivery
// is requeued, by any process.
func (s *Store) changes(ctx context.Context) (int64, error) {
	var v int64
	err := s.stmts.changes.QueryRowContext(quick(ctx)).Scan(&v)
	return v, err
}

// lastEnqueued is the enqueue order of the newest delivery (0: none).
func (s *Store) lastEnqueued(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.db.QueryRowContext(ctx, "SELECT max(n) FROM outbox").Scan(&n)
	return n.Int64, err
}

// outcome is what the dispatcher decided after one attempt.
type outcome struct {
	state  State
	next   time.Time
	reason string // dead: why
	gone   bool   // the receiver said 410: disable the hook
}

// PruneCalls deletes the records of the calls that ended before before
// (GET /calls/{uuid}, a webhook's cdr_url), but the one that ended last:
// whatever its age, it is the last moment kanca is known to have heard
// (LastCallEnd), where reading the PBX's books after a long stop begins.
func (s *Store) PruneCalls(ctx context.Context, before time.Time) (int64, error) {
	n, err := s.deleteOld(ctx, "calls", "hangup_time < ? AND hangup_time < (SELECT MAX(hangup_time) FROM calls)", ms(before))
	if err != nil {
		return n, fmt.Errorf("prune the records of ended calls: %w", err)
	}
	return n, nil
}

// pruneBatch bounds the rows one prune statement deletes. Each statement
// is a transaction of its own, so the outbox's commits (the PBX's events
// on their way) wait behind one batch at most, not behind a month of rows:
// the first prune after an upgrade, after the retention was shortened, or
// an hour of a busy PBX's deliveries.
const pruneBatch = 1000

// deleteOld deletes the rows of table that where (with args) selects, a
// batch at a time, and returns how many it deleted.
func (s *Store) deleteOld(ctx context.Context, table, where string, args ...any) (int64, error) {
	q := fmt.Sprintf("DELETE FROM %[1]s WHERE rowid IN (SELECT rowid FROM %[1]s WHERE %[2]s LIMIT %[3]d)", table, where, pruneBatch)
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, q, args...)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}

// prune drops attempts, delivered deliveries and the records of calls
// older than before; and dead and held deliveries untouched since
// deadBefore, unless it is zero (kept until someone replays, releases or
// removes them).
func (s *Store) prune(ctx context.Context, before, deadBefore time.Time) (attempts, calls, expired int64, err error) {
	if attempts, err = s.deleteOld(ctx, "attempts", "at < ?", ms(before)); err != nil {
		return attempts, 0, 0, fmt.Errorf("prune attempts: %w", err)
	}
	if _, err := s.deleteOld(ctx, "outbox", "state = ? AND updated_at < ?", string(Delivered), ms(before)); err != nil {
		return attempts, 0, 0, fmt.Errorf("prune delivered deliveries: %w", err)
	}
	if calls, err = s.PruneCalls(ctx, before); err != nil {
		return attempts, calls, 0, err
	}
	if deadBefore.IsZero() {
		return attempts, calls, 0, nil
	}
	expired, err = s.deleteOld(ctx, "outbox", "state IN (?, ?) AND updated_at < ?", string(Dead), string(Held), ms(deadBefore))
	if err != nil {
		return attempts, calls, expired, fmt.Errorf("expire dead and held deliveries: %w", err)
	}
	return attempts, calls, expired, nil
}

// Behind returns, for each waiting delivery of ds that waits behind an
// earlier unfinished event of its call to its hook, that event's seq: it
// is not sent before that one is, whatever its own next attempt says.
func (s *Store) Behind(ctx context.Context, ds []Delivery) (map[string]int, error) {
	out := map[string]int{}
	for _, d := range ds {
		if d.State != Pending && d.State != Retrying {
			continue
		}
		var seq sql.NullInt64
		err := s.db.QueryRowContext(ctx, `SELECT min(seq) FROM outbox INDEXED BY outbox_waiting_call
			WHERE hook_id = ? AND call_uuid = ? AND state IN ('pending', 'retrying') AND (seq < ? OR (seq = ? AND n < ?))`,
			d.HookID, d.CallID, d.Seq, d.Seq, d.n).Scan(&seq)
		if err != nil {
			return nil, fmt.Errorf("find what delivery %s waits behind: %w", d.ID, err)
		}
		if seq.Valid {
			out[d.ID] = int(seq.Int64)
		}
	}
	return out, nil
}

// Activity is what a hook's deliveries came to, for kanca status.
type Activity struct {
	ByState     map[State]int
	LastSuccess time.Time // the latest 2xx; zero if none is still recorded
	LastFailure time.Time // the latest failed attempt
	LastError   string    // what that failure was
}

// Activity returns each hook's delivery counts by state and its latest
// success and failure (attempts are kept for the prune retention).
func (s *Store) Activity(ctx context.Context) (map[int64]*Activity, error) {
	out := map[int64]*Activity{}
	get := func(id int64) *Activity {
		if out[id] == nil {
			out[id] = &Activity{ByState: map[State]int{}}
		}
		return out[id]
	}
	rows, err := s.db.QueryContext(ctx, "SELECT hook_id, state, count(*) FROM outbox GROUP BY hook_id, state")
	if err != nil {
		return nil, fmt.Errorf("hook activity: %w", err)
	}
	for rows.Next() {
		var id int64
		var st State
		var n int
		if err := rows.Scan(&id, &st, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("hook activity: %w", err)
		}
		get(id).ByState[st] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("hook activity: %w", err)
	}
	// SQLite takes a bare column (error) from the row max() picked.
	rows, err = s.db.QueryContext(ctx, `SELECT o.hook_id, a.status BETWEEN 200 AND 299 AS ok, max(a.at), a.error, a.status
		FROM attempts a JOIN outbox o ON o.id = a.delivery_id GROUP BY o.hook_id, ok`)
	if err != nil {
		return nil, fmt.Errorf("hook activity: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, at int64
		var ok bool
		var msg string
		var status int
		if err := rows.Scan(&id, &ok, &at, &msg, &status); err != nil {
			return nil, fmt.Errorf("hook activity: %w", err)
		}
		a := get(id)
		if ok {
			a.LastSuccess = fromMS(at)
			continue
		}
		a.LastFailure, a.LastError = fromMS(at), msg
		if msg == "" && status != 0 {
			a.LastError = fmt.Sprintf("HTTP %d", status)
		}
	}
	return out, rows.Err()
}

// HeldByHook counts the held deliveries of each hook that has any.
func (s *Store) HeldByHook(ctx context.Context) (map[int64]int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT hook_id, count(*) FROM outbox WHERE state = ? GROUP BY hook_id", string(Held))
	if err != nil {
		return nil, fmt.Errorf("count held deliveries: %w", err)
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count held deliveries: %w", err)
		}
		out[id] = n
	}
	return out, rows.Err()
}
