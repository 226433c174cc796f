package books

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// openPostgres opens postgres://user:password@host:port/database[?loc=Zone]
// holding FusionPBX's v_xml_cdr (its database, fusionpbx) or Asterisk's
// cel and cdr tables as cel_pgsql and cdr_pgsql write them (Asterisk's
// column names; eventtime a timestamp in the PBX's local time, as in
// MySQL: loc names that zone when kanca's machine is in another). Other parameters are PostgreSQL's own (sslmode, ...).
func openPostgres(spec string) (Books, error) {
	u, err := url.Parse(spec)
	if err != nil {
		return nil, fmt.Errorf("books: %w", err)
	}
	loc := time.Local
	q := u.Query()
	if z := q.Get("loc"); z != "" {
		if loc, err = time.LoadLocation(z); err != nil {
			return nil, fmt.Errorf("books: %s: loc: %w", redact(u), err)
		}
		q.Del("loc")
		u.RawQuery = q.Encode()
	}
	if strings.TrimPrefix(u.Path, "/") == "" {
		u.Path = "/asteriskcdrdb"
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("books: %s: %w", redact(u), err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(2)
	return &pgBooks{db: db, loc: loc}, nil
}
