package hooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Call returns the stored record of an ended call: its call_hangup event as
// JSON, exactly as kanca stored it. The error wraps ErrNotFound if kanca
// has no record of the call.
func (s *Store) Call(ctx context.Context, uuid string) ([]byte, error) {
	var body []byte
	err := s.db.QueryRowContext(ctx, "SELECT hangup_json FROM calls WHERE uuid = ?", uuid).Scan(&body)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("call %q: %w", uuid, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get call %s: %w", uuid, err)
	}
	return body, nil
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master").Scan(&n); err != nil {
		return fmt.Errorf("hook store %s does not answer: %w", s.path, err)
	}
	return nil
}

// CheckWritable proves the database can be written: it takes the write
// lock, writes, and rolls back, leaving the file as it was.
func (s *Store) CheckWritable(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("write to hook store %s: %w", s.path, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "CREATE TABLE kanca_write_probe (x INTEGER)"); err != nil {
		return fmt.Errorf("write to hook store %s: %w", s.path, err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO kanca_write_probe VALUES (1)"); err != nil {
		return fmt.Errorf("write to hook store %s: %w", s.path, err)
	}
	if err := tx.Rollback(); err != nil {
		return fmt.Errorf("write to hook store %s: roll back: %w", s.path, err)
	}
	return nil
}
