package books_test

import (
	"context"
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// dbServer is a database server a recovery test starts for itself: its
// directory (short: a socket path has a small limit, t.TempDir's can
// exceed it), a free port on 127.0.0.1, and its log.
type dbServer struct {
	name, dir string
	port      int
}

// newServer prepares a server named name (MariaDB, PostgreSQL) whose
// programs were found (installed), or skips the test; under CI=true a
// missing server fails it instead.
func newServer(t *testing.T, name, pkg string, installed bool) *dbServer {
	t.Helper()
	if !installed {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (Debian package %s); .ci/run installs it", name, pkg)
		}
		t.Skipf("%s is not installed (Debian package %s)", name, pkg)
	}
	dir, err := os.MkdirTemp("", "kanca-db-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return &dbServer{name: name, dir: dir, port: port}
}

// start runs the server, its output in its log, until the test ends,
// when stop ends it.
func (s *dbServer) start(t *testing.T, cmd *exec.Cmd, stop func(*exec.Cmd)) {
	t.Helper()
	logf, err := os.Create(filepath.Join(s.dir, "server.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stop(cmd)
		logf.Close()
	})
}

// wait returns once db answers, failing the test with the server's log
// after a minute.
func (s *dbServer) wait(t *testing.T, db *sql.DB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for db.PingContext(context.Background()) != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
			t.Fatalf("%s did not start: %s", s.name, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
