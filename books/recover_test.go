package books_test

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/esl"
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
	blind, _ := score(t, recs, nil, nil)
	got, differ := score(t, recs, func(recording) books.Books { return bk }, nil)
	t.Logf("the same as a run that never stopped: from MariaDB %v; without books %v", got, blind)
	for _, d := range differ {
		t.Log("differs: ", d)
	}
	require.Greater(t, got.touchedSame, blind.touchedSame, "the books change nothing")
	// What still differs is listed above (transfers, pickup, parking and
	// queues told by CEL rows that say less than ARI); it may only shrink.
	require.LessOrEqual(t, got.total-got.same, 16)
}

// TestRecoverFromCELFiles does the same with the cel_custom and cdr_custom
// CSV files of the scenario recordings (the load run is recovered from
// the same rows in MariaDB above).
func TestRecoverFromCELFiles(t *testing.T) {
	recs := slices.DeleteFunc(asteriskRecordings(t), func(r recording) bool { return len(r.ins) > 5000 })
	got, differ := score(t, recs, func(rec recording) books.Books {
		b, err := books.Open(filepath.Join(rec.dir, "cel.csv"))
		require.NoError(t, err)
		return b
	}, nil)
	t.Logf("the same as a run that never stopped: from CSV %v", got)
	for _, d := range differ {
		t.Log("differs: ", d)
	}
	require.LessOrEqual(t, got.total-got.same, 15)
}

// TestRecoverFromJSONCDR does the same with the FreeSWITCH recordings and
// the directory of mod_json_cdr files FreeSWITCH wrote for them.
func TestRecoverFromJSONCDR(t *testing.T) {
	dirs, err := filepath.Glob("../testdata/esl/[fg]*")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	var recs []recording
	for _, dir := range dirs {
		recs = append(recs, recording{dir: dir, ins: decoded(t, filepath.Join(dir, "events.ndjson"), esl.Decode, esl.Reorder)})
	}
	blind, _ := score(t, recs, nil, nil)
	got, differ := score(t, recs, func(rec recording) books.Books {
		b, err := books.Open(filepath.Join(rec.dir, "cdr"))
		require.NoError(t, err)
		return b
	}, nil)
	t.Logf("the same as a run that never stopped: from mod_json_cdr files %v; without books %v", got, blind)
	for _, d := range differ {
		t.Log("differs: ", d)
	}
	require.Greater(t, got.endedSame, blind.endedSame, "the books change nothing")
	// A leg's file is written when it ends: a call still up when kanca is
	// back is not in the books, and what it did in the gap is estimated.
	// Of the calls that ended in the gap, those that differ may only get
	// fewer.
	require.LessOrEqual(t, got.ended-got.endedSame, 13)
}
