package hooks

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenCreatesOwnerOnlyFile(t *testing.T) {
	s, path := newStore(t)
	addHook(t, s, Hook{URL: "http://127.0.0.1:1/"}) // forces a write, so the WAL exists
	for _, p := range []string{path, path + "-wal"} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), p)
	}
}

func TestReopenKeepsHooks(t *testing.T) {
	s, path := newStore(t)
	h := addHook(t, s, Hook{URL: "http://127.0.0.1:1/", Secret: "s3cret"})
	require.NoError(t, s.Close())
	s2, err := OpenExisting(path)
	require.NoError(t, err)
	defer s2.Close()
	got, err := s2.GetHook(context.Background(), h.ID)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", got.Secret)
	assert.Equal(t, h.Events, got.Events)
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	s, path := newStore(t)
	require.NoError(t, s.Close())
	raw, err := sql.Open("sqlite3", path)
	require.NoError(t, err)
	_, err = raw.Exec(fmt.Sprintf("PRAGMA user_version = %d", SchemaVersion+7))
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	_, err = Open(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("schema version %d is from a newer kanca", SchemaVersion+7))
	assert.Contains(t, err.Error(), fmt.Sprintf("up to version %d", SchemaVersion))
}

func TestOpenRefusesForeignDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	raw, err := sql.Open("sqlite3", path)
	require.NoError(t, err)
	_, err = raw.Exec("CREATE TABLE invoices (id INTEGER)")
	require.NoError(t, err)
	require.NoError(t, raw.Close())

	_, err = Open(path)
	require.ErrorContains(t, err, "not a kanca database")

	// and it was left alone
	raw, err = sql.Open("sqlite3", path)
	require.NoError(t, err)
	defer raw.Close()
	var n int
	require.NoError(t, raw.QueryRow("SELECT count(*) FROM sqlite_master WHERE name = 'hooks'").Scan(&n))
	assert.Zero(t, n)
	var mode string
	require.NoError(t, raw.QueryRow("PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "delete", mode, "its journal mode is its own program's")
	_, err = os.Stat(path + "-wal")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestOpenRefusesNonSQLiteFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(path, []byte("these are not the tables you are looking for\n"), 0o600))
	_, err := Open(path)
	require.ErrorContains(t, err, "not a SQLite database")
}

func TestOpenExistingRefusesMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.db")
	_, err := OpenExisting(path)
	require.ErrorContains(t, err, "database does not exist")
	_, statErr := os.Stat(path)
	assert.True(t, os.IsNotExist(statErr), "OpenExisting must not create the file")

	_, err = Open("")
	require.ErrorContains(t, err, "no database path")
}

// A database in a directory that does not exist is refused with what to
// run, and every store names its file absolutely.
func TestOpenNamesTheFileAndTheMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(filepath.Join(dir, "var", "lib", "kanca", "kanca.db"))
	require.Error(t, err)
	missing := filepath.Join(dir, "var", "lib", "kanca")
	assert.Contains(t, err.Error(), "directory "+missing+" does not exist")
	assert.Contains(t, err.Error(), "install -d -m 0700")

	t.Chdir(dir)
	s, err := Open("kanca.db")
	require.NoError(t, err)
	defer s.Close()
	assert.Equal(t, filepath.Join(dir, "kanca.db"), s.Path())
	n, err := s.EnabledHooks(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n)
}
