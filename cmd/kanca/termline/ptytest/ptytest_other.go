//go:build !linux

package ptytest

import (
	"os"
	"testing"
)

// Open skips the test: opening a pseudo-terminal is written for Linux only.
func Open(t testing.TB) (tty *os.File, screen func() string) {
	t.Helper()
	t.Skip("pseudo-terminals are opened on Linux only")
	return nil, nil
}
