package books

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync"
	"time"
)

// pgBooks are the books in a PostgreSQL database, of the kind its tables
// say: FusionPBX's v_xml_cdr, else Asterisk's cel and cdr. The tables are
// looked at on the first read, not at Open: kanca starts while the
// database is down, and reads it when a gap needs it.
type pgBooks struct {
	db  *sql.DB
	loc *time.Location

	mu   sync.Mutex
	kind Books
}

func (p *pgBooks) Close() error { return p.db.Close() }

func (p *pgBooks) Calls(ctx context.Context, from, to time.Time) ([]Call, error) {
	p.mu.Lock()
	if p.kind == nil {
		var fusion bool
		if err := p.db.QueryRowContext(ctx, `SELECT to_regclass('v_xml_cdr') IS NOT NULL`).Scan(&fusion); err != nil {
			p.mu.Unlock()
			return nil, fmt.Errorf("looking for FusionPBX's v_xml_cdr: %w", err)
		}
		p.kind = &celTables{db: p.db, loc: p.loc, pg: true}
		if fusion {
			p.kind = &fusionTable{db: p.db}
		}
	}
	kind := p.kind
	p.mu.Unlock()
	return kind.Calls(ctx, from, to)
}

// fusionTable reads FusionPBX's v_xml_cdr: a row per leg that FreeSWITCH's
// mod_xml_cdr posted (only A legs unless FusionPBX's xml_cdr.conf logs B
// legs too), its start and end in whole seconds (start_epoch, end_epoch)
// and the leg's whole record, as JSON (format json, the default: the
// table's json column up to FusionPBX 5.3, v_xml_cdr_json since) or XML
// (format xml: the xml column). The record is read as mod_xml_cdr's.
type fusionTable struct {
	db *sql.DB

	mu    sync.Mutex
	query string // once found; a failed look is tried again
}

func (f *fusionTable) Close() error { return f.db.Close() }

// prepare finds where this FusionPBX keeps the records and builds the
// query that reads them.
func (f *fusionTable) prepare(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.query != "" {
		return f.query, nil
	}
	q, err := f.look(ctx)
	if err != nil {
		return "", err
	}
	f.query = q
	return q, nil
}

// look reads which columns and tables hold the records.
func (f *fusionTable) look(ctx context.Context) (string, error) {
	rows, err := f.db.QueryContext(ctx, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'v_xml_cdr'`)
	if err != nil {
		return "", fmt.Errorf("reading v_xml_cdr's columns: %w", err)
	}
	cols := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return "", fmt.Errorf("reading v_xml_cdr's columns: %w", err)
		}
		cols[c] = true
	}
	if err := rows.Close(); err != nil {
		return "", fmt.Errorf("reading v_xml_cdr's columns: %w", err)
	}
	var sep bool
	if err := f.db.QueryRowContext(ctx, `SELECT to_regclass('v_xml_cdr_json') IS NOT NULL`).Scan(&sep); err != nil {
		return "", fmt.Errorf("looking for v_xml_cdr_json: %w", err)
	}
	var record []string
	if sep {
		record = append(record, `(SELECT j.json::text FROM v_xml_cdr_json j WHERE j.xml_cdr_uuid = c.xml_cdr_uuid LIMIT 1)`)
	}
	for _, c := range []string{"json", "xml"} {
		if cols[c] {
			record = append(record, "NULLIF(c."+c+"::text, '')")
		}
	}
	if len(record) == 0 || !cols["end_epoch"] {
		return "", fmt.Errorf("v_xml_cdr has no record of its legs (no json, xml or v_xml_cdr_json) or no end_epoch")
	}
	leg := `'a'` // without the column, legs are read as A legs
	if cols["leg"] {
		leg = "c.leg"
	}
	// The legs that ended after the window are read too: the books hold
	// them, and a leg an A leg originated is not told from its record
	// when they do (bLegs).
	where := `c.end_epoch >= $1`
	if cols["start_stamp"] {
		// FusionPBX indexes start_stamp, not end_epoch: a leg that ended
		// in the window began at most a day before it (kanca ends a
		// call after 12 hours).
		where = `c.end_epoch >= $1 AND c.start_stamp >= to_timestamp($2)`
	}
	return `SELECT COALESCE(` + strings.Join(record, ", ") + `), ` + leg + ` FROM v_xml_cdr c
		WHERE ` + where, nil
}

// Calls reads the legs that ended since an hour before from (the other
// legs of a call that ended in the window), and tells the calls with a
// leg in the window of those that ended by to.
func (f *fusionTable) Calls(ctx context.Context, from, to time.Time) ([]Call, error) {
	q, err := f.prepare(ctx)
	if err != nil {
		return nil, err
	}
	args := []any{from.Add(-time.Hour).Unix()}
	if strings.Contains(q, "$2") {
		args = append(args, from.Add(-24*time.Hour).Unix())
	}
	rows, err := f.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading v_xml_cdr: %w", err)
	}
	defer rows.Close()
	var legs []fsLeg
	var later []string // legs that ended after to
	aOnly := true      // FusionPBX's default: mod_xml_cdr posts no B legs
	for rows.Next() {
		var rec, leg sql.NullString
		if err := rows.Scan(&rec, &leg); err != nil {
			return nil, fmt.Errorf("reading v_xml_cdr: %w", err)
		}
		if strings.TrimSpace(leg.String) == "b" {
			aOnly = false
		}
		if !rec.Valid {
			continue // a row whose record FusionPBX did not keep
		}
		l, err := parseFusionLeg([]byte(rec.String))
		if err != nil {
			return nil, fmt.Errorf("reading v_xml_cdr: %w", err)
		}
		if l.end.After(to) {
			later = append(later, l.uuid)
			continue
		}
		legs = append(legs, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading v_xml_cdr: %w", err)
	}
	return fsCalls(legs, later, from, to, aOnly), nil
}
