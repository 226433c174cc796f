package books

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// celTables reads Asterisk's cel and cdr tables from MySQL or MariaDB
// (FreePBX keeps them in asteriskcdrdb), with Asterisk's column names.
type celTables struct {
	db  *sql.DB
	loc *time.Location
	// pg: PostgreSQL ($n placeholders; eventtime read as text in the
	// PBX's zone, as it was written), else MySQL/MariaDB.
	pg bool
}

// openMySQL opens mysql://user:password@host:port/database[?loc=Zone].
// Asterisk writes the PBX's local time into the eventtime column: loc
// names that zone when kanca's machine is in another (default: this
// machine's).
func openMySQL(spec string) (Books, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("books: %w", err)
	}
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	if cfg.DBName == "" {
		cfg.DBName = "asteriskcdrdb"
	}
	cfg.ParseTime = true
	cfg.Loc = time.Local
	if z := u.Query().Get("loc"); z != "" {
		if cfg.Loc, err = time.LoadLocation(z); err != nil {
			return nil, fmt.Errorf("books: %s: loc: %w", redact(u), err)
		}
	}
	cfg.Timeout = 5 * time.Second
	cfg.ReadTimeout = 30 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("books: %s: %w", redact(u), err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	return &celTables{db: db, loc: cfg.Loc}, nil
}

// redact is a DSN fit for a log: without its password.
func redact(u *url.URL) string {
	c := *u
	if c.User != nil {
		c.User = url.User(c.User.Username())
	}
	return c.String()
}

func (m *celTables) Close() error { return m.db.Close() }

// touched selects the linkedids with a row in the window. eventtime may
// keep whole seconds only (FreePBX's schema): the window is widened to
// them.
const touched = `SELECT DISTINCT linkedid FROM cel WHERE eventtime BETWEEN ? AND ?`

// query is q for this database: PostgreSQL numbers its placeholders, and
// its eventtime is read as the text the PBX wrote (its local time).
func (m *celTables) query(q string) string {
	if !m.pg {
		return q
	}
	q = strings.Replace(q, "SELECT eventtype, eventtime,", "SELECT eventtype, to_char(eventtime, 'YYYY-MM-DD HH24:MI:SS.US'),", 1)
	for n := 1; strings.Contains(q, "?"); n++ {
		q = strings.Replace(q, "?", fmt.Sprintf("$%d::timestamp", n), 1)
	}
	return q
}

// eventTime reads a row's eventtime: a time.Time from MySQL (its driver
// applies loc), the text PostgreSQL rendered, in loc.
type eventTime struct {
	t   *time.Time
	loc *time.Location
}

func (e eventTime) Scan(v any) error {
	switch x := v.(type) {
	case time.Time:
		*e.t = x
		return nil
	case string:
		t, err := time.ParseInLocation("2006-01-02 15:04:05.999999", x, e.loc)
		*e.t = t
		return err
	case []byte:
		return e.Scan(string(x))
	}
	return fmt.Errorf("eventtime: unexpected %T", v)
}

// Calls reads every row of the calls with a row in the window.
func (m *celTables) Calls(ctx context.Context, from, to time.Time) ([]Call, error) {
	lo, hi := from.In(m.loc).Truncate(time.Second), to.In(m.loc).Truncate(time.Second).Add(time.Second)
	var args []any = []any{lo, hi}
	if m.pg {
		// Compared with the timestamp the PBX wrote, in its zone.
		args = []any{lo.Format("2006-01-02 15:04:05"), hi.Format("2006-01-02 15:04:05")}
	}
	rows, err := m.db.QueryContext(ctx, m.query(`SELECT eventtype, eventtime, cid_name, cid_num, cid_dnid, exten, context,
		channame, appname, appdata, uniqueid, linkedid, peer, extra
		FROM cel WHERE linkedid IN (`+touched+`) ORDER BY eventtime, id`), args...)
	if err != nil {
		return nil, fmt.Errorf("reading cel: %w", err)
	}
	var cel []celRow
	for rows.Next() {
		var r celRow
		var extra sql.NullString
		if err := rows.Scan(&r.Event, eventTime{&r.Time, m.loc}, &r.CIDName, &r.CIDNum, &r.DNID, &r.Exten, &r.Context,
			&r.Chan, &r.App, &r.AppData, &r.UniqueID, &r.LinkedID, &r.Peer, &extra); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading cel: %w", err)
		}
		r.Time = r.Time.UTC()
		r.Extra = extra.String
		cel = append(cel, r)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("reading cel: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading cel: %w", err)
	}
	rows, err = m.db.QueryContext(ctx, m.query(`SELECT channel, dstchannel, lastapp, lastdata, disposition, linkedid
		FROM cdr WHERE linkedid IN (`+touched+`)`), args...)
	if err != nil {
		return nil, fmt.Errorf("reading cdr: %w", err)
	}
	defer rows.Close()
	var cdrs []cdrRow
	for rows.Next() {
		var r cdrRow
		if err := rows.Scan(&r.Channel, &r.DstChannel, &r.LastApp, &r.LastData, &r.Disposition, &r.LinkedID); err != nil {
			return nil, fmt.Errorf("reading cdr: %w", err)
		}
		cdrs = append(cdrs, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading cdr: %w", err)
	}
	return asteriskCalls(cel, cdrs, to), nil
}
