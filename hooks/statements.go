package hooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// statements are the hot path's SQL, prepared once: SQLite compiling a
// statement costs more than running it, and these run for every event and
// every attempt.
type statements struct {
	insertDelivery, saveCall, journalInput, journalDrop, allHooks, changes,
	recordAttempt, logAttempt, insertForward *sql.Stmt
}

func prepare(ctx context.Context, db *sql.DB) (*statements, error) {
	st := &statements{}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&st.insertDelivery, `INSERT INTO outbox (id, hook_id, call_uuid, seq, event, body, content_type,
			state, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&st.saveCall, `INSERT INTO calls (uuid, number, direction, caller, callee, call_time, answer_time,
			hangup_time, hangup_cause, hangup_json, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (uuid) DO UPDATE SET number = excluded.number, direction = excluded.direction,
			caller = excluded.caller, callee = excluded.callee, call_time = excluded.call_time,
			answer_time = excluded.answer_time, hangup_time = excluded.hangup_time,
			hangup_cause = excluded.hangup_cause, hangup_json = excluded.hangup_json, updated_at = excluded.updated_at`},
		{&st.journalInput, "INSERT INTO journal (channel, input) VALUES (?, ?)"},
		{&st.journalDrop, "DELETE FROM journal WHERE channel = ?"},
		{&st.allHooks, "SELECT " + hookColumns + " FROM hooks ORDER BY id"},
		{&st.changes, "SELECT v FROM changes"},
		{&st.recordAttempt, `UPDATE outbox SET state = ?, attempts = attempts + 1, next_attempt_at = ?,
			last_status = ?, last_error = ?, updated_at = ? WHERE n = ? AND id = ? AND state IN ('pending', 'retrying')`},
		{&st.logAttempt, `INSERT INTO attempts (delivery_id, at, status, latency_ms, response, error)
			VALUES (?, ?, ?, ?, ?, ?)`},
		{&st.insertForward, "INSERT INTO forward (id, call_uuid, event, created_at) VALUES (?, ?, ?, ?)"},
	} {
		s, err := db.PrepareContext(ctx, p.q)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("prepare %.40q: %w", p.q, err)
		}
		*p.dst = s
	}
	return st, nil
}

func (st *statements) close() error {
	var errs []error
	for _, s := range []*sql.Stmt{st.insertDelivery, st.saveCall, st.journalInput, st.journalDrop,
		st.allHooks, st.changes, st.recordAttempt, st.logAttempt, st.insertForward} {
		if s != nil {
			errs = append(errs, s.Close())
		}
	}
	return errors.Join(errs...)
}
