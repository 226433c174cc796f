// Package autodial holds calls placed on request: API keys and what each
// may do, the requests taken (the audit trail), the calls they make and
// the runner that places them through the PBX, one after another when
// asked to escalate, again after busy or no answer, within calling
// windows, and at most once across a crash.
//
// It keeps its own SQLite file beside the hook store (kanca.db ->
// kanca.calls.db): its writes (a request, a call's progress) never wait
// behind the outbox's write lock, which the PBX's event stream holds, and
// its schema moves on its own.
package autodial

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the database/sql driver "sqlite3"

	"github.com/kanca/kanca/internal/owner"
)

// ErrNotFound is returned for a key or request that does not exist.
var ErrNotFound = errors.New("not found")

// PathFor is the autodial database kept beside the hook store at db.
func PathFor(db string) string {
	ext := filepath.Ext(db)
	return strings.TrimSuffix(db, ext) + ".calls" + cmpOr(ext, ".db")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Store is the autodial database. Open it once per process: the runner
// and the HTTP handlers share it.
type Store struct {
	db *sql.DB
}

var schema = []string{
	`CREATE TABLE IF NOT EXISTS keys (
		id INTEGER PRIMARY KEY,
		name TEXT NOT NULL UNIQUE,
		hash TEXT NOT NULL UNIQUE,
		allow TEXT NOT NULL,           -- international-digit prefixes, comma separated
		allow_premium INTEGER NOT NULL,
		daily_budget INTEGER NOT NULL, -- calls per day; 0: none left
		rate_per_minute INTEGER NOT NULL,
		from_numbers TEXT NOT NULL,    -- PBX numbers it may call from, comma separated; first is the default
		created TEXT NOT NULL
	)`,
	`CREATE TABLE IF NOT EXISTS requests (
		id INTEGER PRIMARY KEY,
		key_name TEXT NOT NULL,
		kind TEXT NOT NULL,
		remote TEXT NOT NULL,
		created TEXT NOT NULL,
		day TEXT NOT NULL,             -- the budget's day, in kanca's zone
		spec TEXT NOT NULL             -- the normalised request, JSON
	)`,
	`CREATE TABLE IF NOT EXISTS calls (
		id INTEGER PRIMARY KEY,
		request_id INTEGER NOT NULL REFERENCES requests(id),
		seq INTEGER NOT NULL,
		number TEXT NOT NULL,          -- international digits
		state TEXT NOT NULL,           -- waiting, queued, dialing, then a final state
		attempts INTEGER NOT NULL DEFAULT 0,
		next_at INTEGER NOT NULL DEFAULT 0, -- unix seconds
		channel TEXT NOT NULL DEFAULT '',
		answered INTEGER NOT NULL DEFAULT 0,
		digit TEXT NOT NULL DEFAULT '',
		outcome TEXT NOT NULL DEFAULT '',
		updated TEXT NOT NULL
	)`,
	`CREATE INDEX IF NOT EXISTS calls_due ON calls(state, next_at)`,
}

// Open opens (creating, mode 0600) the autodial database at path.
func Open(path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("open call store: no path")
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open call store: %w", err)
	}
	f.Close()
	if err := owner.OfDirectory(path); err != nil {
		return nil, fmt.Errorf("open call store: %w", err)
	}
	db, err := sql.Open("sqlite3", path+"?_busy_timeout=10000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open call store %s: %w", path, err)
	}
	for _, q := range schema {
		if _, err := db.Exec(q); err != nil {
			db.Close()
			return nil, fmt.Errorf("open call store %s: %w", path, err)
		}
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Key is an API key's rules; the secret itself is never stored.
type Key struct {
	ID            int64     `json:"id"`
	Name          string    `json:"name"`
	Allow         []string  `json:"allow"`
	AllowPremium  bool      `json:"allow_premium"`
	DailyBudget   int       `json:"daily_budget"`
	RatePerMinute int       `json:"rate_per_minute"`
	From          []string  `json:"from"`
	Created       time.Time `json:"created"`
}

func hashKey(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// AddKey stores k and returns its secret, which is shown once: only its
// hash is kept.
func (s *Store) AddKey(ctx context.Context, k Key) (string, error) {
	if k.Name == "" {
		return "", errors.New("a key needs a name")
	}
	if len(k.Allow) == 0 {
		return "", errors.New("a key needs at least one allowed prefix")
	}
	if len(k.From) == 0 {
		return "", errors.New("a key needs at least one PBX number to call from")
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	secret := "kk_" + hex.EncodeToString(b[:])
	_, err := s.db.ExecContext(ctx, `INSERT INTO keys (name, hash, allow, allow_premium, daily_budget, rate_per_minute, from_numbers, created)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, k.Name, hashKey(secret), strings.Join(k.Allow, ","), k.AllowPremium,
		k.DailyBudget, k.RatePerMinute, strings.Join(k.From, ","), time.Now().UTC().Format(time.RFC3339))
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return "", fmt.Errorf("a key named %q exists", k.Name)
		}
		return "", fmt.Errorf("add key: %w", err)
	}
	return secret, nil
}

const keyCols = `id, name, allow, allow_premium, daily_budget, rate_per_minute, from_numbers, created`

func scanKey(sc interface{ Scan(...any) error }) (Key, error) {
	var k Key
	var allow, from, created string
	if err := sc.Scan(&k.ID, &k.Name, &allow, &k.AllowPremium, &k.DailyBudget, &k.RatePerMinute, &from, &created); err != nil {
		return Key{}, err
	}
	k.Allow = strings.Split(allow, ",")
	k.From = strings.Split(from, ",")
	k.Created, _ = time.Parse(time.RFC3339, created)
	return k, nil
}

// KeyBySecret finds the key a request presented.
func (s *Store) KeyBySecret(ctx context.Context, secret string) (Key, error) {
	k, err := scanKey(s.db.QueryRowContext(ctx, `SELECT `+keyCols+` FROM keys WHERE hash = ?`, hashKey(secret)))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, ErrNotFound
	}
	return k, err
}

// Keys lists the keys by name.
func (s *Store) Keys(ctx context.Context) ([]Key, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+keyCols+` FROM keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RemoveKey deletes the key named name; its requests stay in the trail.
func (s *Store) RemoveKey(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM keys WHERE name = ?`, name)
	if err != nil {
		return fmt.Errorf("remove key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("no key named %q: %w", name, ErrNotFound)
	}
	return nil
}
