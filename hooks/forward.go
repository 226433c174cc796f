package hooks

import (
	"context"
	"fmt"
	"time"
)

// Forwarded is a call event a listener keeps for the cluster
// (OutboxOptions.Forward), in commit order.
type Forwarded struct {
	N      int64  // commit order
	ID     string // the event's id, stable across publishes
	CallID string
	Event  []byte // cdr.Event as JSON
}

// Unforwarded returns up to limit events the cluster has not acknowledged,
// oldest first.
func (s *Store) Unforwarded(ctx context.Context, limit int) ([]Forwarded, error) {
	rows, err := s.db.QueryContext(quick(ctx), `SELECT n, id, call_uuid, event FROM forward INDEXED BY forward_waiting
		WHERE forwarded_at IS NULL ORDER BY n LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("read events to forward: %w", err)
	}
	defer rows.Close()
	var out []Forwarded
	for rows.Next() {
		var f Forwarded
		if err := rows.Scan(&f.N, &f.ID, &f.CallID, &f.Event); err != nil {
			return nil, fmt.Errorf("read events to forward: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events to forward: %w", err)
	}
	return out, nil
}

// MarkForwarded records that the cluster acknowledged every event up to
// commit order n: they are published in that order.
func (s *Store) MarkForwarded(ctx context.Context, n int64, at time.Time) error {
	tx, done, err := s.begin(ctx, false)
	if err != nil {
		return fmt.Errorf("mark events forwarded: %w", err)
	}
	defer done()
	if _, err := tx.ExecContext(quick(ctx), "UPDATE forward SET forwarded_at = ? WHERE n <= ? AND forwarded_at IS NULL",
		ms(at), n); err != nil {
		return fmt.Errorf("mark events forwarded: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mark events forwarded: %w", err)
	}
	return nil
}

// PruneForwarded deletes the events acknowledged before before: the
// cluster holds them.
func (s *Store) PruneForwarded(ctx context.Context, before time.Time) (int64, error) {
	tx, done, err := s.begin(ctx, false)
	if err != nil {
		return 0, fmt.Errorf("prune forwarded events: %w", err)
	}
	defer done()
	res, err := tx.ExecContext(ctx, "DELETE FROM forward WHERE forwarded_at IS NOT NULL AND forwarded_at < ?", ms(before))
	if err != nil {
		return 0, fmt.Errorf("prune forwarded events: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("prune forwarded events: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// ForwardBacklog counts the events the cluster has not acknowledged.
func (s *Store) ForwardBacklog(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM forward INDEXED BY forward_waiting WHERE forwarded_at IS NULL").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count events to forward: %w", err)
	}
	return n, nil
}

// Committed is signalled (never blocking the writer) after the outbox
// commits: a forwarder waits on it instead of polling. Only one reader
// takes each signal, so a process runs either a dispatcher or a forwarder.
func (s *Store) Committed() <-chan struct{} { return s.wake }
