package owner

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// As root, a file created in a directory another user owns becomes that
// user's; in root's own directory it stays root's.
func TestOfDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("gives files away only as root (CI runs as root)")
	}
	dir := t.TempDir()
	require.NoError(t, os.Chown(dir, 65534, 65534))
	path := filepath.Join(dir, "kanca.db")
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	require.NoError(t, OfDirectory(path))
	requireOwner(t, path, 65534)

	own := filepath.Join(t.TempDir(), "kanca.db")
	require.NoError(t, os.WriteFile(own, nil, 0o600))
	require.NoError(t, OfDirectory(own))
	requireOwner(t, own, 0)
}

func requireOwner(t *testing.T, path string, uid uint32) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, uid, fi.Sys().(*syscall.Stat_t).Uid, path)
}
