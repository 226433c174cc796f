package hooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

// Encoding holds the body options that are kanca-wide rather than per hook.
type Encoding struct {
	Location         *time.Location // ISO times; nil: time.Local
	NumbersAsStrings bool
	// CDRURL returns where a call's record can be read, or "" for none.
	CDRURL func(callUUID string) string
}

// Encode renders ev for hook h: its format, its spelling of the event,
// its domain and account ids.
func (e Encoding) Encode(h Hook, ev cdr.Event) (body []byte, contentType, eventName string, err error) {
	name, ok := h.EventName(ev.Type)
	if !ok {
		name = string(ev.Type)
	}
	o := formats.Options{
		Location:         e.Location,
		NumbersAsStrings: e.NumbersAsStrings,
		EventName:        name,
		DomainID:         h.DomainID,
		AccountID:        h.AccountID,
	}
	if e.CDRURL != nil {
		o.CDRURL = e.CDRURL(ev.CallID)
	}
	body, contentType, err = formats.Encode(h.Format, ev, o)
	return body, contentType, name, err
}

// OutboxOptions tune the outbox; zero values take the defaults.
type OutboxOptions struct {
	Encoding Encoding
	// MaxBatch closes a group commit at this many events (default 256).
	MaxBatch int
	// BatchWait is how long the first caller of a group waits for others
	// to join it (default 2 ms). Callers arriving while a commit runs join
	// the next group anyway, so this only matters on an idle store.
	BatchWait time.Duration
	Now       func() time.Time
}

// Outbox turns call events into durable deliveries.
type Outbox struct {
	s    *Store
	opts OutboxOptions

	mu   sync.Mutex
	open *batch // the group callers join; nil: the next caller starts one

	commitMu sync.Mutex // SQLite has one writer: groups commit one after another

	events, deliveries, batches atomic.Int64
}

type batch struct {
	reqs   []*request
	events int
	full   chan struct{} // closed when the batch reaches MaxBatch
	done   chan struct{} // closed when committed (or failed)
	err    error         // the commit's
}

type request struct {
	evs      []cdr.Event
	input    *cdr.Input // to journal
	finished []string   // channels whose journal entries go
	err      error      // this caller's own (encoding) error
}

// NewOutbox returns an outbox writing to s.
func NewOutbox(s *Store, o OutboxOptions) *Outbox {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 256
	}
	if o.BatchWait <= 0 {
		o.BatchWait = 2 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Outbox{s: s, opts: o}
}

// Enqueue stores one delivery per (event, matching hook), and the CDR of
// every call_hangup, and returns once they are committed: an event is
// taken only when it is durable. It does database work only, never
// network work, so a slow receiver cannot hold up the event source.
// Concurrent callers share one transaction (group commit).
func (o *Outbox) Enqueue(ctx context.Context, evs []cdr.Event) error {
	if len(evs) == 0 {
		return nil
	}
	req := &request{evs: evs}
	o.mu.Lock()
	b := o.open
	leader := b == nil
	if leader {
		b = &batch{full: make(chan struct{}), done: make(chan struct{})}
		o.open = b
	}
	b.reqs = append(b.reqs, req)
	b.events += len(evs)
	if b.events >= o.opts.MaxBatch {
		o.open = nil
		close(b.full)
	}
	o.mu.Unlock()

	if !leader {
		select {
		case <-b.done:
			return errors.Join(req.err, b.err)
		case <-ctx.Done():
			// The rows may still be committed: at least once, never lost.
			return fmt.Errorf("enqueue %d events: %w", len(evs), ctx.Err())
		}
	}
	// The leader commits for everyone, so it ignores its own cancellation.
	t := time.NewTimer(o.opts.BatchWait)
	select {
	case <-b.full:
	case <-t.C:
	}
	t.Stop()
	o.commitMu.Lock()
	o.mu.Lock()
	if o.open == b {
		o.open = nil
	}
	o.mu.Unlock()
	b.err = o.commit(context.WithoutCancel(ctx), b)
	o.commitMu.Unlock()
	close(b.done)
	if b.err == nil {
		o.s.notify()
	}
	return errors.Join(req.err, b.err)
}

func (o *Outbox) commit(ctx context.Context, b *batch) error {
	return o.commitReqs(ctx, b.reqs, b.events)
}

// Unit is what one PBX input (or one expiry pass) changed: the call
// events it completed, the input itself when the tracker needs it to
// restore its calls after a restart, and the channels whose journaled
// inputs it no longer needs.
type Unit struct {
	Events   []cdr.Event
	Input    *cdr.Input
	Finished []string
}

// Commit stores units in one transaction, in the order given: their
// deliveries, their call records, and the journal. errs[i] is unit i's own
// failure (an event that cannot be encoded: retrying will not help), with
// its journal changes and the other units committed; err is the
// transaction's (database locked, disk full: retrying may), with nothing
// committed. Events and the journal entry of the input that made them are
// committed together, so a restored tracker never makes an event again
// that is already stored.
func (o *Outbox) Commit(ctx context.Context, units []Unit) (errs []error, err error) {
	reqs := make([]*request, len(units))
	n := 0
	for i, u := range units {
		reqs[i] = &request{evs: u.Events, input: u.Input, finished: u.Finished}
		n += len(u.Events)
	}
	o.commitMu.Lock()
	err = o.commitReqs(ctx, reqs, n)
	o.commitMu.Unlock()
	if err != nil {
		return nil, err
	}
	if n > 0 {
		o.s.notify()
	}
	errs = make([]error, len(units))
	for i, r := range reqs {
		errs[i] = r.err
	}
	return errs, nil
}

func (o *Outbox) commitReqs(ctx context.Context, reqs []*request, nEvents int) error {
	tx, err := o.s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("enqueue: begin: %w", err)
	}
	defer tx.Rollback()
	now := o.opts.Now()
	var created, events int64
	for _, r := range reqs {
		// A savepoint per caller: one caller's bad event fails that caller
		// alone, not the others sharing the transaction.
		if _, err := tx.ExecContext(ctx, "SAVEPOINT req"); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		n, err := o.insert(ctx, tx, r.evs, now)
		if err != nil {
			r.err = err
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO req"); err != nil {
				return fmt.Errorf("enqueue: %w", err)
			}
		} else {
			created += n
			events += int64(len(r.evs))
		}
		if _, err := tx.ExecContext(ctx, "RELEASE req"); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		// The journal moves on even when the events failed: the tracker
		// has taken the input either way.
		if err := journal(ctx, tx, r.input, r.finished); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		for _, r := range reqs {
			r.err = nil
		}
		return fmt.Errorf("enqueue: commit %d events: %w", nEvents, err)
	}
	o.events.Add(events)
	o.deliveries.Add(created)
	o.batches.Add(1)
	return nil
}

func (o *Outbox) insert(ctx context.Context, tx *sql.Tx, evs []cdr.Event, now time.Time) (int64, error) {
	var created int64
	for _, ev := range evs {
		if ev.Type == cdr.CallHangup {
			if err := o.saveCall(ctx, tx, ev, now); err != nil {
				return 0, err
			}
		}
		hooks, err := matchingHooks(ctx, tx, ev)
		if err != nil {
			return 0, err
		}
		for _, h := range hooks {
			body, ctype, name, err := o.opts.Encoding.Encode(h, ev)
			if err != nil {
				return 0, fmt.Errorf("enqueue %s for hook %d: %w", ev.Type, h.ID, err)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO outbox (id, hook_id, call_uuid, seq, event, body, content_type,
				state, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				newDeliveryID(now), h.ID, ev.CallID, ev.Seq, name, body, ctype, string(Pending), ms(now), ms(now), ms(now))
			if err != nil {
				return 0, fmt.Errorf("enqueue %s of call %s for hook %d: %w", ev.Type, ev.CallID, h.ID, err)
			}
			created++
		}
	}
	return created, nil
}

func matchingHooks(ctx context.Context, tx *sql.Tx, ev cdr.Event) ([]Hook, error) {
	rows, err := tx.QueryContext(ctx, "SELECT "+hookColumns+" FROM hooks WHERE number = ? AND enabled = 1 ORDER BY id", ev.Number)
	if err != nil {
		return nil, fmt.Errorf("match hooks for %s: %w", ev.Number, err)
	}
	defer rows.Close()
	var out []Hook
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, fmt.Errorf("match hooks for %s: %w", ev.Number, err)
		}
		if h.Matches(ev) {
			out = append(out, h)
		}
	}
	return out, rows.Err()
}

// saveCall keeps the CDR of an ended call whether or not any hook wants it.
func (o *Outbox) saveCall(ctx context.Context, tx *sql.Tx, ev cdr.Event, now time.Time) error {
	if ev.CDR == nil {
		return fmt.Errorf("enqueue call_hangup of call %s: no call detail record", ev.CallID)
	}
	body, _, err := formats.Encode(formats.JSON, ev, formats.Options{
		Location: o.opts.Encoding.Location, NumbersAsStrings: o.opts.Encoding.NumbersAsStrings})
	if err != nil {
		return fmt.Errorf("enqueue call_hangup of call %s: %w", ev.CallID, err)
	}
	var answer any
	if !ev.CDR.AnswerTime.IsZero() {
		answer = ms(ev.CDR.AnswerTime)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO calls (uuid, number, direction, caller, callee, call_time, answer_time,
		hangup_time, hangup_cause, hangup_json, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (uuid) DO UPDATE SET number = excluded.number, direction = excluded.direction,
		caller = excluded.caller, callee = excluded.callee, call_time = excluded.call_time,
		answer_time = excluded.answer_time, hangup_time = excluded.hangup_time,
		hangup_cause = excluded.hangup_cause, hangup_json = excluded.hangup_json, updated_at = excluded.updated_at`,
		ev.CallID, ev.Number, ev.Direction, ev.Caller, ev.Callee, ms(ev.CDR.CallTime), answer,
		ms(ev.CDR.HangupTime), ev.HangupCause, body, ms(now))
	if err != nil {
		return fmt.Errorf("save call %s: %w", ev.CallID, err)
	}
	return nil
}

// OutboxStats are running totals since NewOutbox.
type OutboxStats struct {
	Events     int64 // events committed
	Deliveries int64 // delivery rows created
	Batches    int64 // group commits
}

// Stats returns a snapshot of the outbox's counters.
func (o *Outbox) Stats() OutboxStats {
	return OutboxStats{Events: o.events.Load(), Deliveries: o.deliveries.Load(), Batches: o.batches.Load()}
}
