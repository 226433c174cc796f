package hooks

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/kanca/kanca/formats"
	"github.com/kanca/kanca/internal/owner"
	"github.com/kanca/kanca/templates"
)

// driverName is SQLite with each connection mapping the database file
// into memory. SQLite drops a connection's page cache whenever another
// connection commits, so the dispatcher reading back a backlog would
// otherwise make a system call and a copy for every page; mapped, a page
// already in the file is a memory access (pages still in the WAL are read
// as before). The price: an I/O error reading the file ends the process
// instead of failing one statement, and a restart resumes from the store.
const driverName = "sqlite3-kanca"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA mmap_size = 1073741824", nil)
		return err
	}})
}

// applicationID marks a SQLite file as kanca's ("kanc"), so that a foreign
// database given by mistake is refused instead of altered.
const applicationID = 0x6b616e63

// migrations[i] brings the schema from version i to i+1. Append only: a
// shipped migration never changes.
var migrations = []string{
	`
CREATE TABLE hooks (
	id                   INTEGER PRIMARY KEY AUTOINCREMENT,
	number               TEXT    NOT NULL,
	url                  TEXT    NOT NULL,
	events               TEXT    NOT NULL, -- comma-separated spellings
	format               TEXT    NOT NULL,
	username             TEXT    NOT NULL DEFAULT '',
	password             TEXT    NOT NULL DEFAULT '',
	secret               TEXT    NOT NULL DEFAULT '',
	domain_id            INTEGER,
	account_id           INTEGER,
	enabled              INTEGER NOT NULL DEFAULT 1,
	disabled_reason      TEXT    NOT NULL DEFAULT '',
	timeout_ms           INTEGER NOT NULL,
	insecure_skip_verify INTEGER NOT NULL DEFAULT 0,
	created_at           INTEGER NOT NULL, -- unix ms, like every time below
	updated_at           INTEGER NOT NULL
);
CREATE INDEX hooks_number ON hooks(number);

CREATE TABLE calls (
	uuid         TEXT PRIMARY KEY,
	number       TEXT NOT NULL,
	direction    TEXT NOT NULL,
	caller       TEXT NOT NULL,
	callee       TEXT NOT NULL,
	call_time    INTEGER NOT NULL,
	answer_time  INTEGER, -- NULL: never answered
	hangup_time  INTEGER NOT NULL,
	hangup_cause TEXT NOT NULL,
	hangup_json  BLOB NOT NULL, -- the call_hangup event as JSON
	updated_at   INTEGER NOT NULL
);

CREATE TABLE outbox (
	n               INTEGER PRIMARY KEY AUTOINCREMENT, -- enqueue order
	id              TEXT    NOT NULL UNIQUE,           -- delivery id, stable across retries
	hook_id         INTEGER NOT NULL REFERENCES hooks(id) ON DELETE CASCADE,
	call_uuid       TEXT    NOT NULL,
	seq             INTEGER NOT NULL,
	event           TEXT    NOT NULL, -- as sent
	body            BLOB    NOT NULL,
	content_type    TEXT    NOT NULL,
	state           TEXT    NOT NULL,
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at INTEGER NOT NULL,
	last_status     INTEGER NOT NULL DEFAULT 0,
	last_error      TEXT    NOT NULL DEFAULT '',
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
);
CREATE INDEX outbox_due  ON outbox(hook_id, state, next_attempt_at);
CREATE INDEX outbox_call ON outbox(hook_id, call_uuid, seq);
CREATE INDEX outbox_list ON outbox(state, updated_at);

CREATE TABLE attempts (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	delivery_id TEXT    NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
	at          INTEGER NOT NULL,
	status      INTEGER NOT NULL DEFAULT 0, -- 0: no response
	latency_ms  INTEGER NOT NULL,
	response    BLOB    NOT NULL DEFAULT '',
	error       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX attempts_delivery ON attempts(delivery_id, at);
CREATE INDEX attempts_at ON attempts(at);
`,
	// The dispatcher looks for due deliveries after every send. Indexes over
	// the waiting rows alone, in the order it takes them, let it stop at
	// the first few instead of sorting every waiting row of the hook.
	`
CREATE INDEX outbox_waiting ON outbox(hook_id, next_attempt_at, n) WHERE state IN ('pending', 'retrying');
CREATE INDEX outbox_waiting_call ON outbox(hook_id, call_uuid, seq, n) WHERE state IN ('pending', 'retrying');
DROP INDEX outbox_due;
`,
	// The tracker's journal: the inputs of the calls still live, so that a
	// restart (a crash included) resumes them where they were.
	`
CREATE TABLE journal (
	n       INTEGER PRIMARY KEY AUTOINCREMENT,
	channel TEXT NOT NULL,
	input   BLOB NOT NULL -- cdr.Input as JSON
);
CREATE INDEX journal_channel ON journal(channel);
`,
	`
-- Every change to the hooks, and every delivery requeued, by any process,
-- moves this on: the outbox reads the hooks again, and the dispatcher the
-- deliveries, only when it moved.
CREATE TABLE changes (v INTEGER NOT NULL);
INSERT INTO changes VALUES (0);
CREATE TRIGGER hooks_inserted AFTER INSERT ON hooks BEGIN UPDATE changes SET v = v + 1; END;
CREATE TRIGGER hooks_updated AFTER UPDATE ON hooks BEGIN UPDATE changes SET v = v + 1; END;
CREATE TRIGGER hooks_deleted AFTER DELETE ON hooks BEGIN UPDATE changes SET v = v + 1; END;
CREATE TRIGGER outbox_requeued AFTER UPDATE OF state, next_attempt_at ON outbox
	WHEN new.state = 'pending' AND (old.state != 'pending' OR new.next_attempt_at < old.next_attempt_at)
	BEGIN UPDATE changes SET v = v + 1; END;
`,
	// A hook's request: method, a preset in a language or templates (JSON
	// of templates.Set), the templates' time zone and params (JSON).
	`
ALTER TABLE hooks ADD COLUMN method    TEXT NOT NULL DEFAULT 'POST';
ALTER TABLE hooks ADD COLUMN preset    TEXT NOT NULL DEFAULT '';
ALTER TABLE hooks ADD COLUMN lang      TEXT NOT NULL DEFAULT '';
ALTER TABLE hooks ADD COLUMN tz        TEXT NOT NULL DEFAULT '';
ALTER TABLE hooks ADD COLUMN templates TEXT NOT NULL DEFAULT '';
ALTER TABLE hooks ADD COLUMN params    TEXT NOT NULL DEFAULT '';
`,
	// The events of a disabled hook are held ('held' rows) until it is
	// enabled; enabling, discarding and counting them go by this index.
	`
CREATE INDEX outbox_held ON outbox(hook_id, n) WHERE state = 'held';
`,
	`ALTER TABLE hooks ADD COLUMN max_in_flight INTEGER NOT NULL DEFAULT 128;`, // DefaultMaxInFlight when added
	// A listener (kanca run --nats) keeps call events here, not per hook:
	// hooks live in the cluster. The forwarder publishes them in n order
	// and marks each once the cluster acknowledged it.
	`
CREATE TABLE forward (
	n            INTEGER PRIMARY KEY AUTOINCREMENT, -- commit order: the order published
	id           TEXT    NOT NULL UNIQUE,           -- the event's id: the stream deduplicates by it
	call_uuid    TEXT    NOT NULL,
	event        BLOB    NOT NULL, -- cdr.Event as JSON
	created_at   INTEGER NOT NULL,
	forwarded_at INTEGER           -- NULL: not yet acknowledged by the cluster
);
CREATE INDEX forward_waiting ON forward(n) WHERE forwarded_at IS NULL;
CREATE INDEX forward_done ON forward(forwarded_at) WHERE forwarded_at IS NOT NULL;
`,
	// Ended calls are pruned, and read after a gap, by when they ended.
	`CREATE INDEX calls_ended ON calls(hangup_time);`,
}

// SchemaVersion is the schema this kanca writes.
var SchemaVersion = len(migrations)

// Store is kanca's durable state: hooks, ended calls, the outbox and its
// attempt log, in one SQLite file.
type Store struct {
	db   *sql.DB
	path string
	// wake tells this process's dispatcher that work may be due, so that
	// the hot path does not wait for a poll.
	wake chan struct{}
	// wmu queues this process's write transactions in Go. Left to SQLite,
	// a writer that finds the lock taken sleeps in the busy handler, up to
	// 100 ms at a time, and wakes long after the lock is free.
	wmu   writeLock
	stmts *statements
	fresh handoff
	// hooks is the enabled hooks by number as of the changes version,
	// read under wmu only.
	hooks struct {
		version  int64
		byNumber map[string][]Hook
	}
}

// handoff carries deliveries from the outbox to this process's dispatcher
// as they are committed, so that sending them does not wait for the
// dispatcher to read them back.
type handoff struct {
	mu       sync.Mutex
	attached bool // a dispatcher takes them; otherwise none are kept
	list     []Delivery
	// resync: some were not kept, or the store changed in a way only a
	// read shows (a retry, a hook enabled): the dispatcher must read.
	resync bool
}

// maxHandoff bounds what waits for a dispatcher that is busy: beyond it,
// deliveries stay in the store alone and the dispatcher reads them back.
const maxHandoff = 1 << 15

// handOff gives committed deliveries to the dispatcher.
func (s *Store) handOff(ds []Delivery) {
	if len(ds) == 0 {
		return
	}
	h := &s.fresh
	h.mu.Lock()
	if h.attached {
		if len(h.list)+len(ds) <= maxHandoff {
			h.list = append(h.list, ds...)
		} else {
			h.resync = true
		}
	}
	h.mu.Unlock()
	s.wakeUp()
}

// attach starts keeping committed deliveries for a dispatcher; the
// dispatcher reads the store once attached, so that none falls between.
func (s *Store) attach(on bool) {
	h := &s.fresh
	h.mu.Lock()
	h.attached, h.list, h.resync = on, nil, false
	h.mu.Unlock()
}

// takeFresh returns what was handed off since the last call, and whether
// the dispatcher must read the store as well.
func (s *Store) takeFresh() (ds []Delivery, resync bool) {
	h := &s.fresh
	h.mu.Lock()
	ds, resync = h.list, h.resync
	h.list, h.resync = nil, false
	h.mu.Unlock()
	return ds, resync
}

// Open opens the store at path, creating it (mode 0600) and its schema if
// it does not exist.
func Open(path string) (*Store, error) { return open(path, true) }

// Path is the database file, absolute.
func (s *Store) Path() string { return s.path }

// EnabledHooks counts the hooks that are enabled: with none, call events
// are only held or go nowhere.
func (s *Store) EnabledHooks(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM hooks WHERE enabled = 1").Scan(&n); err != nil {
		return 0, fmt.Errorf("count enabled hooks: %w", err)
	}
	return n, nil
}

// OpenExisting opens the store at path and fails if there is none: for
// commands that only read or change what is there.
func OpenExisting(path string) (*Store, error) { return open(path, false) }

func open(path string, create bool) (*Store, error) {
	if path == "" {
		return nil, errors.New("open hook store: no database path given (--db or KANCA_DB)")
	}
	// Every message names the file absolutely: "kanca.db" alone does not
	// say which directory a daemon or a command used.
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if err := prepareFile(path, create); err != nil {
		return nil, err
	}
	// FULL makes each commit durable; the outbox commits in groups, so that
	// costs one sync per group, not per row. IMMEDIATE takes the write lock
	// at BEGIN, where busy_timeout can wait for it, rather than failing
	// when a read transaction tries to upgrade.
	// WAL is set once the file is known to be kanca's (see wal): a journal
	// mode lives in the file, and another program's is not kanca's to change.
	dsn := path + "?_busy_timeout=10000&_synchronous=FULL&_foreign_keys=1&_txlock=immediate"
	db, err := sql.Open(driverName, dsn)
	if err != nil {
		return nil, fmt.Errorf("open hook store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, wake: make(chan struct{}, 1)}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.wal(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	if s.stmts, err = prepare(context.Background(), db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open hook store %s: %w", path, err)
	}
	return s, nil
}

// begin starts a write transaction, in turn with this process's other
// writers; done rolls back what was not committed and lets the next in.
// An urgent writer (the outbox: a call's webhooks wait for its commit)
// goes before the others (attempt records, which nothing waits for).
func (s *Store) begin(ctx context.Context, urgent bool) (tx *sql.Tx, done func(), err error) {
	s.wmu.lock(urgent)
	tx, err = s.db.BeginTx(ctx, nil)
	if err != nil {
		s.wmu.unlock()
		return nil, nil, err
	}
	return tx, func() {
		tx.Rollback()
		s.wmu.unlock()
	}, nil
}

// quick is the context for one statement on the hot path. go-sqlite3
// starts a goroutine per statement, and one per row read, to watch a
// context that can be cancelled. These statements are short (a row, or
// a window's worth of rows), so they run to their end; a cancelled caller
// stops at its next step, and a transaction begun with its context is
// still rolled back.
func quick(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

// writeLock is a mutex whose urgent holders go first. A waiter that is
// not urgent still gets its turn after maxDefer, so a stream of urgent
// commits cannot starve it.
type writeLock struct {
	mu     sync.Mutex
	cond   sync.Cond
	held   bool
	urgent int // urgent waiters
}

const maxDefer = 20 * time.Millisecond

func (l *writeLock) lock(urgent bool) {
	l.mu.Lock()
	if l.cond.L == nil {
		l.cond.L = &l.mu
	}
	if urgent {
		l.urgent++
		for l.held {
			l.cond.Wait()
		}
		l.urgent--
	} else {
		start := time.Now()
		for l.held || (l.urgent > 0 && time.Since(start) < maxDefer) {
			l.cond.Wait()
		}
	}
	l.held = true
	l.mu.Unlock()
}

func (l *writeLock) unlock() {
	l.mu.Lock()
	l.held = false
	l.mu.Unlock()
	l.cond.Broadcast()
}

// prepareFile creates a new database file with owner-only permissions
// (SQLite gives its -wal and -shm files the same), and refuses a file that
// is not SQLite before the driver can say something obscure about it.
func prepareFile(path string, create bool) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return fmt.Errorf("open hook store %s: database does not exist (kanca run or kanca hooks add creates it)", path)
		}
		dir := filepath.Dir(path)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			// Not created here: the directory's owner and mode are the
			// admin's to choose (the service's user, 0700).
			return fmt.Errorf("create hook store %s: directory %s does not exist; create it for the user kanca runs as: sudo install -d -m 0700 -o $(id -un) %s", path, dir, dir)
		}
		nf, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("create hook store %s: %w", path, err)
		}
		if err := nf.Close(); err != nil {
			return fmt.Errorf("create hook store %s: %w", path, err)
		}
		return owner.OfDirectory(path)
	}
	if err != nil {
		return fmt.Errorf("open hook store %s: %w", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("open hook store %s: is a directory", path)
	}
	head := make([]byte, 16)
	n, err := io.ReadFull(f, head)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil // empty: SQLite treats it as a new database
	}
	if !bytes.Equal(head[:n], []byte("SQLite format 3\x00")) {
		return fmt.Errorf("open hook store %s: not a SQLite database", path)
	}
	return nil
}

// wal puts the database in WAL mode, where readers and the one writer do
// not wait for each other. The mode is the file's: every connection opened
// after it uses it.
func (s *Store) wal(ctx context.Context) error {
	var mode string
	if err := s.db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return fmt.Errorf("open hook store %s: journal mode: %w", s.path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("open hook store %s: journal mode is %s, not wal (a file system without shared memory?)", s.path, mode)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("open hook store %s: %w", s.path, err)
	}
	defer tx.Rollback()
	var app, version, tables int
	if err := tx.QueryRowContext(ctx, "PRAGMA application_id").Scan(&app); err != nil {
		return fmt.Errorf("open hook store %s: %w", s.path, err)
	}
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("open hook store %s: %w", s.path, err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").Scan(&tables); err != nil {
		return fmt.Errorf("open hook store %s: %w", s.path, err)
	}
	switch {
	case app == 0 && version == 0 && tables == 0:
		// a new file
	case app != applicationID:
		return fmt.Errorf("open hook store %s: not a kanca database (another program's SQLite file)", s.path)
	case version > SchemaVersion:
		return fmt.Errorf("open hook store %s: schema version %d is from a newer kanca; this kanca knows up to version %d", s.path, version, SchemaVersion)
	}
	if version == SchemaVersion {
		return nil
	}
	for v := version; v < SchemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate hook store %s to version %d: %w", s.path, v+1, err)
		}
	}
	// PRAGMA takes no parameters; both values are ours.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d; PRAGMA user_version = %d", applicationID, SchemaVersion)); err != nil {
		return fmt.Errorf("migrate hook store %s: %w", s.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate hook store %s: %w", s.path, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close hook store %s: %w", s.path, err)
	}
	return nil
}

// notify tells this process's dispatcher that the store changed under
// it (a delivery requeued, a hook enabled): it reads the store again.
func (s *Store) notify() {
	s.fresh.mu.Lock()
	s.fresh.resync = true
	s.fresh.mu.Unlock()
	s.wakeUp()
}

// wakeUp wakes the dispatcher without ever blocking the caller.
func (s *Store) wakeUp() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

const hookColumns = `id, number, url, events, format, username, password, secret, domain_id, account_id,
	enabled, disabled_reason, timeout_ms, insecure_skip_verify, created_at, updated_at,
	method, preset, lang, tz, templates, params, max_in_flight`

func scanHook(sc interface{ Scan(...any) error }) (Hook, error) {
	var h Hook
	var events, format string
	var dom, acc sql.NullInt64
	var timeout, created, updated int64
	var tmpls, params string
	err := sc.Scan(&h.ID, &h.Number, &h.URL, &events, &format, &h.User, &h.Password, &h.Secret,
		&dom, &acc, &h.Enabled, &h.DisabledReason, &timeout, &h.InsecureSkipVerify, &created, &updated,
		&h.Method, &h.Preset, &h.Lang, &h.TZ, &tmpls, &params, &h.MaxInFlight)
	if err != nil {
		return Hook{}, err
	}
	if err := unmarshalColumn(tmpls, &h.Templates); err != nil {
		return Hook{}, fmt.Errorf("hook %d templates: %w", h.ID, err)
	}
	if err := unmarshalColumn(params, &h.Params); err != nil {
		return Hook{}, fmt.Errorf("hook %d params: %w", h.ID, err)
	}
	h.Events = strings.Split(events, ",")
	h.Format = formats.Format(format)
	if dom.Valid {
		h.DomainID = &dom.Int64
	}
	if acc.Valid {
		h.AccountID = &acc.Int64
	}
	h.Timeout = time.Duration(timeout) * time.Millisecond
	h.Created, h.Updated = fromMS(created), fromMS(updated)
	return h, nil
}

// unmarshalColumn reads a JSON column; empty is the zero value.
func unmarshalColumn(s string, v any) error {
	if s == "" {
		return nil
	}
	return json.Unmarshal([]byte(s), v)
}

// requestColumns are the values of method, preset, lang, tz, templates
// and params, JSON columns empty when unset.
func requestColumns(h Hook) []any {
	var tmpls, params []byte
	if !h.Templates.IsZero() {
		tmpls, _ = json.Marshal(h.Templates) // strings only: cannot fail
	}
	if len(h.Params) > 0 {
		params, _ = json.Marshal(h.Params)
	}
	return []any{h.Method, h.Preset, h.Lang, h.TZ, string(tmpls), string(params)}
}

func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// AddHook validates h and stores it, enabled. Events default to all seven,
// the format to json, the timeout to DefaultTimeout.
func (s *Store) AddHook(ctx context.Context, h Hook) (Hook, error) {
	h, err := NewHook(h, time.Now())
	if err != nil {
		return Hook{}, err
	}
	return insertHook(ctx, s.db, h)
}

// NewHook is h as a new hook, made at now: defaults filled in, enabled,
// validated. Its ID is the store's to give.
func NewHook(h Hook, now time.Time) (Hook, error) {
	h = h.withDefaults()
	h.Enabled = true
	h.DisabledReason = ""
	if err := h.Validate(); err != nil {
		return Hook{}, err
	}
	h.Created, h.Updated = now, now
	return h, nil
}

// ListHooks returns every hook, by id.
func (s *Store) ListHooks(ctx context.Context) ([]Hook, error) {
	hs, err := s.queryHooks(ctx, "SELECT "+hookColumns+" FROM hooks ORDER BY id")
	if err != nil {
		return nil, err
	}
	held, err := s.HeldByHook(ctx)
	if err != nil {
		return nil, err
	}
	for i := range hs {
		hs[i].Held = held[hs[i].ID]
	}
	return hs, nil
}

func (s *Store) queryHooks(ctx context.Context, q string, args ...any) ([]Hook, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list hooks: %w", err)
	}
	defer rows.Close()
	var out []Hook
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, fmt.Errorf("list hooks: %w", err)
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list hooks: %w", err)
	}
	return out, nil
}

// GetHook returns the hook with id; the error wraps ErrNotFound if none.
func (s *Store) GetHook(ctx context.Context, id int64) (Hook, error) {
	h, err := getHook(ctx, s.db, id)
	if err != nil {
		return h, err
	}
	err = s.db.QueryRowContext(ctx, "SELECT count(*) FROM outbox INDEXED BY outbox_held WHERE hook_id = ? AND state = 'held'", id).Scan(&h.Held)
	if err != nil {
		return h, fmt.Errorf("get hook %d: count held deliveries: %w", id, err)
	}
	return h, nil
}

func getHook(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, id int64) (Hook, error) {
	h, err := scanHook(q.QueryRowContext(ctx, "SELECT "+hookColumns+" FROM hooks WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return Hook{}, fmt.Errorf("hook %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Hook{}, fmt.Errorf("get hook %d: %w", id, err)
	}
	return h, nil
}

// HookUpdate names the fields to change; nil fields stay as they are. An
// empty string clears User, Password or Secret; a zero ID clears DomainID
// or AccountID.
type HookUpdate struct {
	Number             *string
	URL                *string
	Events             []string // nil: unchanged
	Format             *formats.Format
	User               *string
	Password           *string
	Secret             *string
	DomainID           *int64
	AccountID          *int64
	Timeout            *time.Duration
	InsecureSkipVerify *bool
	Method             *string
	Preset             *string // "" drops the preset
	Lang               *string
	TZ                 *string
	Templates          *templates.Set    // a zero Set drops the templates
	Params             map[string]string // nil: unchanged; a param set to "" is dropped
	MaxInFlight        *int
}

// UpdateHook applies u to the hook with id, validating the result.
func (s *Store) UpdateHook(ctx context.Context, id int64, u HookUpdate) (Hook, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Hook{}, fmt.Errorf("update hook %d: %w", id, err)
	}
	defer tx.Rollback()
	h, err := getHook(ctx, tx, id)
	if err != nil {
		return Hook{}, err
	}
	if h, err = u.Apply(h, time.Now()); err != nil {
		return Hook{}, err
	}
	if err := updateHook(ctx, tx, h); err != nil {
		return Hook{}, err
	}
	if err := tx.Commit(); err != nil {
		return Hook{}, fmt.Errorf("update hook %d: %w", id, err)
	}
	return h, nil
}

// Apply returns h changed by u at now, validated.
func (u HookUpdate) Apply(h Hook, now time.Time) (Hook, error) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&h.Number, u.Number)
	set(&h.URL, u.URL)
	set(&h.User, u.User)
	set(&h.Password, u.Password)
	set(&h.Secret, u.Secret)
	if u.Events != nil {
		h.Events = u.Events
	}
	if u.Format != nil {
		h.Format = *u.Format
	}
	if u.DomainID != nil {
		h.DomainID = zeroToNil(*u.DomainID)
	}
	if u.AccountID != nil {
		h.AccountID = zeroToNil(*u.AccountID)
	}
	if u.Timeout != nil {
		h.Timeout = *u.Timeout
	}
	if u.InsecureSkipVerify != nil {
		h.InsecureSkipVerify = *u.InsecureSkipVerify
	}
	set(&h.Method, u.Method)
	set(&h.Preset, u.Preset)
	set(&h.Lang, u.Lang)
	set(&h.TZ, u.TZ)
	if u.Templates != nil {
		h.Templates = *u.Templates
	}
	if u.Params != nil {
		ps := maps.Clone(h.Params)
		if ps == nil {
			ps = map[string]string{}
		}
		for k, v := range u.Params {
			if v == "" {
				delete(ps, k)
			} else {
				ps[k] = v
			}
		}
		h.Params = ps
	}
	if h.Preset != "" && h.Lang == "" {
		h.Lang = templates.Langs[0]
	}
	if u.MaxInFlight != nil {
		h.MaxInFlight = *u.MaxInFlight
	}
	if err := h.Validate(); err != nil {
		return Hook{}, err
	}
	h.Updated = now
	return h, nil
}

// updateHook writes every field of h but its enabled state and creation time.
func updateHook(ctx context.Context, tx *sql.Tx, h Hook) error {
	_, err := tx.ExecContext(ctx, `UPDATE hooks SET number = ?, url = ?, events = ?, format = ?, username = ?,
		password = ?, secret = ?, domain_id = ?, account_id = ?, timeout_ms = ?, insecure_skip_verify = ?,
		updated_at = ?, method = ?, preset = ?, lang = ?, tz = ?, templates = ?, params = ?, max_in_flight = ?
		WHERE id = ?`,
		append(append([]any{h.Number, h.URL, strings.Join(h.Events, ","), string(h.Format), h.User, h.Password, h.Secret,
			nullInt(h.DomainID), nullInt(h.AccountID), h.Timeout.Milliseconds(), boolInt(h.InsecureSkipVerify),
			ms(h.Updated)}, requestColumns(h)...), h.MaxInFlight, h.ID)...)
	if err != nil {
		return fmt.Errorf("update hook %d: %w", h.ID, err)
	}
	return nil
}

func zeroToNil(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

// RemoveHook deletes the hook with id together with its deliveries and
// their attempts: nothing can send them any more.
func (s *Store) RemoveHook(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM hooks WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("remove hook %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("remove hook %d: %w", id, ErrNotFound)
	}
	return nil
}

// SetEnabled enables or disables the hook with id. A disabled hook is sent
// nothing: its queued deliveries wait, and the events of its calls are
// held. Enabling it releases them (see Enable).
func (s *Store) SetEnabled(ctx context.Context, id int64, enabled bool) error {
	if enabled {
		_, err := s.Enable(ctx, id, false)
		return err
	}
	res, err := s.db.ExecContext(ctx, "UPDATE hooks SET enabled = 0, disabled_reason = '', updated_at = ? WHERE id = ?",
		ms(time.Now()), id)
	if err != nil {
		return fmt.Errorf("disable hook %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("hook %d: %w", id, ErrNotFound)
	}
	s.notify()
	return nil
}

// Enable enables the hook with id and, in the same transaction, releases
// the deliveries held while it was disabled: they are due at once and go
// out in order per call, as any queued delivery. With discard they are
// deleted instead. It returns how many were released or deleted.
func (s *Store) Enable(ctx context.Context, id int64, discard bool) (int, error) {
	tx, done, err := s.begin(ctx, false)
	if err != nil {
		return 0, fmt.Errorf("enable hook %d: %w", id, err)
	}
	defer done()
	now := ms(time.Now())
	res, err := tx.ExecContext(ctx, "UPDATE hooks SET enabled = 1, disabled_reason = '', updated_at = ? WHERE id = ?", now, id)
	if err != nil {
		return 0, fmt.Errorf("enable hook %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, fmt.Errorf("hook %d: %w", id, ErrNotFound)
	}
	if discard {
		// The state is spelt out: a bound one cannot pick the partial index.
		res, err = tx.ExecContext(ctx, "DELETE FROM outbox INDEXED BY outbox_held WHERE hook_id = ? AND state = 'held'", id)
	} else {
		// next_attempt_at 0: due at once whatever the dispatcher's clock.
		res, err = tx.ExecContext(ctx, `UPDATE outbox INDEXED BY outbox_held SET state = 'pending', next_attempt_at = 0,
			updated_at = ? WHERE hook_id = ? AND state = 'held'`, now, id)
	}
	if err != nil {
		return 0, fmt.Errorf("enable hook %d: release held deliveries: %w", id, err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("enable hook %d: %w", id, err)
	}
	s.notify()
	return int(n), nil
}
