// Package owner gives the files kanca creates as root to the owner of the
// directory they are in.
//
// An admin runs a kanca command with sudo beside a service that runs as a
// user of its own (the systemd unit's): a database, lock or call store
// created then would belong to root, and the service could not open it.
// SQLite does the same for the journal files it creates as root.
package owner

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// OfDirectory gives path the owner and group of its directory when this
// process runs as root; otherwise it does nothing.
func OfDirectory(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	dir, err := os.Stat(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("give %s to its directory's owner: %w", path, err)
	}
	st, ok := dir.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	if err := os.Lchown(path, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give %s to its directory's owner: %w", path, err)
	}
	return nil
}
