package books

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// celFiles reads Asterisk's CEL from a cel_custom CSV file, with the CDR
// from a cdr_custom CSV file beside it when there is one (the columns of
// Asterisk's sample cel_custom.conf and cdr_custom.conf, with epoch times).
type celFiles struct {
	cel, cdr string
}

func (f *celFiles) Close() error { return nil }

// Calls reads both files whole: they are written as calls happen, and a
// window's calls may have rows on both sides of it.
func (f *celFiles) Calls(ctx context.Context, from, to time.Time) ([]Call, error) {
	cel, err := readCEL(f.cel)
	if err != nil {
		return nil, err
	}
	var cdrs []cdrRow
	if f.cdr != "" {
		if cdrs, err = readCDR(f.cdr); err != nil {
			return nil, err
		}
	}
	var out []Call
	for _, c := range asteriskCalls(cel, cdrs, to) {
		if touches(c, from, to) {
			out = append(out, c)
		}
	}
	return out, ctx.Err()
}

// CEL CSV columns: EventType, EventTime (epoch.usec), CIDName, CIDNum, ANI,
// RDNIS, DNID, Exten, Context, ChanName, AppName, AppData, AMAFlags,
// AccountCode, UniqueID, LinkedID, Peer, PeerAccount, UserField, Extra.
func readCEL(path string) ([]celRow, error) {
	var rows []celRow
	err := eachCSV(path, 20, func(rec []string) error {
		at, ok := epoch(rec[1])
		if !ok {
			return fmt.Errorf("event time %q is not epoch seconds", rec[1])
		}
		rows = append(rows, celRow{Event: rec[0], Time: at, CIDName: rec[2], CIDNum: rec[3], DNID: rec[6],
			Exten: rec[7], Context: rec[8], Chan: rec[9], App: rec[10], AppData: rec[11],
			UniqueID: rec[14], LinkedID: rec[15], Peer: rec[16], Extra: rec[19]})
		return nil
	})
	return rows, err
}

// CDR CSV columns: src, dst, dcontext, clid, channel, dstchannel, lastapp,
// lastdata, start, answer, end, start, answer, end (epoch), duration,
// billsec, disposition, amaflags, uniqueid, linkedid, ...
func readCDR(path string) ([]cdrRow, error) {
	var rows []cdrRow
	err := eachCSV(path, 20, func(rec []string) error {
		rows = append(rows, cdrRow{Channel: rec[4], DstChannel: rec[5], LastApp: rec[6], LastData: rec[7],
			Disposition: rec[16], LinkedID: rec[19]})
		return nil
	})
	return rows, err
}

func eachCSV(path string, min int, row func([]string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("books: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = -1
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("books: %s: %w", path, err)
		}
		if len(rec) < min {
			return fmt.Errorf("books: %s line %d: %d columns, want at least %d", path, line, len(rec), min)
		}
		if err := row(rec); err != nil {
			return fmt.Errorf("books: %s line %d: %w", path, line, err)
		}
	}
}
