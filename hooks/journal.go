package hooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kanca/kanca/cdr"
)

// journal appends in (when set) and drops the entries of finished
// channels.
func (s *Store) journal(ctx context.Context, tx *sql.Tx, in *cdr.Input, finished []string) error {
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("journal %s of channel %s: %w", in.Kind, in.Channel.ID, err)
		}
		if _, err := tx.StmtContext(ctx, s.stmts.journalInput).ExecContext(ctx, in.Channel.ID, b); err != nil {
			return fmt.Errorf("journal %s of channel %s: %w", in.Kind, in.Channel.ID, err)
		}
	}
	if len(finished) == 0 {
		return nil
	}
	drop := tx.StmtContext(ctx, s.stmts.journalDrop)
	for _, ch := range finished {
		if _, err := drop.ExecContext(ctx, ch); err != nil {
			return fmt.Errorf("drop journal of channel %s: %w", ch, err)
		}
	}
	return nil
}

// Journal returns the journaled inputs in the order they were taken: fed
// to a new tracker, they restore the calls that were live when kanca
// stopped. An entry that does not decode is skipped and reported in bad,
// so that one damaged row cannot keep kanca from starting.
func (s *Store) Journal(ctx context.Context) (ins []cdr.Input, bad []error, err error) {
	rows, err := s.db.QueryContext(ctx, "SELECT n, input FROM journal ORDER BY n")
	if err != nil {
		return nil, nil, fmt.Errorf("read journal: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n int64
		var b []byte
		if err := rows.Scan(&n, &b); err != nil {
			return nil, nil, fmt.Errorf("read journal: %w", err)
		}
		var in cdr.Input
		if err := json.Unmarshal(b, &in); err != nil {
			bad = append(bad, fmt.Errorf("journal entry %d: %w", n, err))
			continue
		}
		ins = append(ins, in)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read journal: %w", err)
	}
	return ins, bad, nil
}

// EndedSince returns the uuids of the calls the store holds that ended at
// or after t: after a gap, those of them the PBX's books hold were told.
func (s *Store) EndedSince(ctx context.Context, t time.Time) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT uuid FROM calls WHERE hangup_time >= ?", ms(t))
	if err != nil {
		return nil, fmt.Errorf("calls ended since %s: %w", t.Format(time.RFC3339), err)
	}
	defer rows.Close()
	ended := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("calls ended since %s: %w", t.Format(time.RFC3339), err)
		}
		ended[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("calls ended since %s: %w", t.Format(time.RFC3339), err)
	}
	return ended, nil
}

// LastCallEnd is when the latest call the store holds ended (zero when it
// holds none): with the journal's latest input, the last moment of the
// PBX kanca is known to have heard before it stopped.
func (s *Store) LastCallEnd(ctx context.Context) (time.Time, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, "SELECT MAX(hangup_time) FROM calls").Scan(&v); err != nil {
		return time.Time{}, fmt.Errorf("latest call end: %w", err)
	}
	if !v.Valid {
		return time.Time{}, nil
	}
	return fromMS(v.Int64), nil
}
