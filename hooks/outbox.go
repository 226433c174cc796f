package hooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
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

// Encode renders ev for hook h: the format its deliveries are stored in,
// its spelling of the event, its domain and account ids.
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
	body, contentType, err = formats.Encode(h.storedFormat(), ev, o)
	return body, contentType, name, err
}

// OutboxOptions tune the outbox; zero values take the defaults.
type OutboxOptions struct {
	Encoding Encoding
	Now      func() time.Time
	// Forward keeps each call event once, for the forwarder to publish to
	// a cluster whose workers deliver it (kanca run --nats), instead of a
	// delivery per local hook.
	Forward bool
}

// Outbox turns call events into durable deliveries.
type Outbox struct {
	s    *Store
	opts OutboxOptions

	events, deliveries, batches atomic.Int64
}

// NewOutbox returns an outbox writing to s.
func NewOutbox(s *Store, o OutboxOptions) *Outbox {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Outbox{s: s, opts: o}
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
	tx, done, err := o.s.begin(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("enqueue: begin: %w", err)
	}
	defer done()
	ctx = quick(ctx)
	now := o.opts.Now()
	hooks, err := o.s.hooksByNumber(ctx, tx)
	if err != nil {
		return nil, fmt.Errorf("enqueue: %w", err)
	}
	if o.opts.Forward {
		return o.commitForward(ctx, tx, units, now)
	}
	insert := tx.StmtContext(ctx, o.s.stmts.insertDelivery)
	save := tx.StmtContext(ctx, o.s.stmts.saveCall)
	var events, nEvents, deliveries int64
	var fresh []Delivery
	errs = make([]error, len(units))
	for i, u := range units {
		nEvents += int64(len(u.Events))
		// Everything that can fail for one unit alone (an event that does
		// not encode) fails before its first row, so the unit is left out
		// whole without a savepoint.
		calls, ds, err := o.render(hooks, u.Events, now)
		if err != nil {
			errs[i] = err
		} else {
			for _, c := range calls {
				if _, err := save.ExecContext(ctx, c...); err != nil {
					return nil, fmt.Errorf("save call %s: %w", c[0], err)
				}
			}
			for i := range ds {
				d := &ds[i]
				res, err := insert.ExecContext(ctx, d.ID, d.HookID, d.CallID, d.Seq, d.Event, d.Body, d.ContentType,
					string(d.State), ms(now), ms(now), ms(now))
				if err == nil {
					d.n, err = res.LastInsertId()
				}
				if err != nil {
					return nil, fmt.Errorf("enqueue %s of call %s for hook %d: %w", d.Event, d.CallID, d.HookID, err)
				}
			}
			for _, d := range ds {
				if d.State == Pending { // held ones wait for Enable
					fresh = append(fresh, d)
				}
			}
			events += int64(len(u.Events))
			deliveries += int64(len(ds))
		}
		// The journal moves on even when the events failed: the tracker
		// has taken the input either way.
		if err := o.s.journal(ctx, tx, u.Input, u.Finished); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("enqueue: commit %d events: %w", nEvents, err)
	}
	o.events.Add(events)
	o.deliveries.Add(deliveries)
	o.batches.Add(1)
	o.s.handOff(fresh)
	return errs, nil
}

// commitForward is Commit for a listener: each event is stored once, with
// a new id, for the forwarder; the call records are kept as usual.
func (o *Outbox) commitForward(ctx context.Context, tx *sql.Tx, units []Unit, now time.Time) (errs []error, err error) {
	var events int64
	errs = make([]error, len(units))
	for i, u := range units {
		type row struct {
			id, call string
			body     []byte
		}
		var rows []row
		var calls [][]any
		for _, ev := range u.Events {
			if ev.Type == cdr.CallHangup {
				c, err := o.callRow(ev, now)
				if err != nil {
					errs[i] = err
					break
				}
				calls = append(calls, c)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				errs[i] = fmt.Errorf("forward %s of call %s: %w", ev.Type, ev.CallID, err)
				break
			}
			rows = append(rows, row{newDeliveryID(now), ev.CallID, b})
		}
		if errs[i] == nil {
			save := tx.StmtContext(ctx, o.s.stmts.saveCall)
			for _, c := range calls {
				if _, err := save.ExecContext(ctx, c...); err != nil {
					return nil, fmt.Errorf("save call %s: %w", c[0], err)
				}
			}
			for _, r := range rows {
				if _, err := tx.StmtContext(ctx, o.s.stmts.insertForward).ExecContext(ctx, r.id, r.call, r.body, ms(now)); err != nil {
					return nil, fmt.Errorf("keep event of call %s for the cluster: %w", r.call, err)
				}
			}
			events += int64(len(rows))
		}
		if err := o.s.journal(ctx, tx, u.Input, u.Finished); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("enqueue: commit %d events: %w", events, err)
	}
	o.events.Add(events)
	o.batches.Add(1)
	o.s.wakeUp()
	return errs, nil
}

// render makes the rows of one unit's events: the call record of each
// call_hangup (the saveCall statement's arguments) and one delivery per
// matching hook.
func (o *Outbox) render(byNumber map[string][]Hook, evs []cdr.Event, now time.Time) (calls [][]any, ds []Delivery, err error) {
	for _, ev := range evs {
		if ev.Type == cdr.CallHangup {
			c, err := o.callRow(ev, now)
			if err != nil {
				return nil, nil, err
			}
			calls = append(calls, c)
		}
		for _, h := range Targets(byNumber, ev) {
			body, ctype, name, err := o.opts.Encoding.Encode(h, ev)
			if err != nil {
				return nil, nil, fmt.Errorf("enqueue %s of call %s for hook %d: %w", ev.Type, ev.CallID, h.ID, err)
			}
			// A disabled hook's events are held, not dropped: it is
			// disabled for a maintenance window, or after a 410 that an
			// admin may take back.
			st := Pending
			if !h.Enabled {
				st = Held
			}
			ds = append(ds, Delivery{ID: newDeliveryID(now), HookID: h.ID, CallID: ev.CallID, Seq: ev.Seq, Event: name,
				Body: body, ContentType: ctype, State: st, NextAttempt: fromMS(ms(now))})
		}
	}
	return calls, ds, nil
}

// Targets returns the hooks of byNumber (hooks by the number they are
// bound to) that ev is for, enabled or not, in byNumber's order.
func Targets(byNumber map[string][]Hook, ev cdr.Event) []Hook {
	var out []Hook
	cands := byNumber[ev.Number]
	if cb := callbackOf(ev); cb != "" {
		cands = append(cands[:len(cands):len(cands)], byNumber[cb]...)
	}
	for _, h := range cands {
		if h.Matches(ev) {
			out = append(out, h)
		}
	}
	return out
}

// hooksByNumber returns the hooks, enabled or not, by the number they are
// bound to, in id order, reading them again only when they changed. The caller
// holds wmu.
func (s *Store) hooksByNumber(ctx context.Context, tx *sql.Tx) (map[string][]Hook, error) {
	var v int64
	if err := tx.StmtContext(ctx, s.stmts.changes).QueryRowContext(ctx).Scan(&v); err != nil {
		return nil, fmt.Errorf("match hooks: %w", err)
	}
	if s.hooks.byNumber != nil && s.hooks.version == v {
		return s.hooks.byNumber, nil
	}
	rows, err := tx.StmtContext(ctx, s.stmts.allHooks).QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("match hooks: %w", err)
	}
	defer rows.Close()
	out := map[string][]Hook{}
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, fmt.Errorf("match hooks: %w", err)
		}
		out[h.Number] = append(out[h.Number], h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("match hooks: %w", err)
	}
	s.hooks.version, s.hooks.byNumber = v, out
	return out, nil
}

// callRow is the saveCall statement's arguments for a call_hangup: the
// CDR of an ended call is kept whether or not any hook wants it.
func (o *Outbox) callRow(ev cdr.Event, now time.Time) ([]any, error) {
	if ev.CDR == nil {
		return nil, fmt.Errorf("enqueue call_hangup of call %s: no call detail record", ev.CallID)
	}
	body, _, err := formats.Encode(formats.JSON, ev, formats.Options{
		Location: o.opts.Encoding.Location, NumbersAsStrings: o.opts.Encoding.NumbersAsStrings})
	if err != nil {
		return nil, fmt.Errorf("enqueue call_hangup of call %s: %w", ev.CallID, err)
	}
	var answer any
	if !ev.CDR.AnswerTime.IsZero() {
		answer = ms(ev.CDR.AnswerTime)
	}
	return []any{ev.CallID, ev.Number, ev.Direction, ev.Caller, ev.Callee, ms(ev.CDR.CallTime), answer,
		ms(ev.CDR.HangupTime), ev.HangupCause, body, ms(now)}, nil
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
