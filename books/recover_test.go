package books_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/books"
)

// TestRecoverFromMariaDB kills kanca in the middle of the recorded
// Asterisk runs, lets the calls run on into a real MariaDB holding
// Asterisk's cel and cdr tables, restarts it, and compares every call's
// webhooks with those of a run that never stopped.
func TestRecoverFromMariaDB(t *testing.T) {
	dsn, db := mariadb(t)
	recs := asteriskRecordings(t)
	for _, rec := range recs {
		loadRows(t, db, rec.dir)
	}
	bk, err := books.Open(dsn)
	require.NoError(t, err)
	defer bk.Close()
	blind, total, _ := score(t, recs, nil)
	same, total, differ := score(t, recs, func(recording) books.Books { return bk })
	t.Logf("calls the same as a run that never stopped: %d of %d from MariaDB, %d without books", same, total, blind)
	for _, d := range differ {
		t.Log("differs: ", d)
	}
	require.Greater(t, same, blind, "the books change nothing")
	// What still differs is listed above (transfers, pickup, parking and
	// queues told by CEL rows that say less than ARI); it may only shrink.
	require.LessOrEqual(t, total-same, 31)
}

// TestRecoverFromCELFiles does the same with the cel_custom and cdr_custom
// CSV files.
func TestRecoverFromCELFiles(t *testing.T) {
	recs := asteriskRecordings(t)
	same, total, differ := score(t, recs, func(rec recording) books.Books {
		b, err := books.Open(filepath.Join(rec.dir, "cel.csv"))
		require.NoError(t, err)
		return b
	})
	t.Logf("calls the same as a run that never stopped: %d of %d from CSV", same, total)
	for _, d := range differ {
		t.Log("differs: ", d)
	}
	require.LessOrEqual(t, total-same, 31)
}
