package books_test

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
)

// postgres starts a PostgreSQL server of its own for the test, on
// 127.0.0.1 and a free port, with an empty asteriskcdrdb holding
// Asterisk's cel and cdr tables as cel_pgsql and cdr_pgsql write them,
// and returns its kanca DSN and a connection. Under CI=true a missing
// PostgreSQL fails the test; elsewhere it skips. PostgreSQL refuses to
// run as root: run by root, the server runs as the postgres user.
func postgres(t *testing.T) (dsn string, db *sql.DB) {
	t.Helper()
	initdb, server := pgBinary("initdb"), pgBinary("postgres")
	srv := newServer(t, "PostgreSQL", "postgresql", initdb != "" && server != "")
	as := func(cmd *exec.Cmd) *exec.Cmd { return cmd }
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "run by root, the server needs the postgres user")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(srv.dir, uid, gid))
		as = func(cmd *exec.Cmd) *exec.Cmd {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			return cmd
		}
	}
	data := filepath.Join(srv.dir, "data")
	out, err := as(exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")).CombinedOutput()
	require.NoError(t, err, "initdb: %s", out)
	srv.start(t, as(exec.Command(server, "-D", data, "-k", srv.dir, "-p", strconv.Itoa(srv.port), "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "shared_buffers=16MB")), func(cmd *exec.Cmd) {
		cmd.Process.Signal(syscall.SIGINT) // a fast shutdown
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})

	connect := func(database string) *sql.DB {
		cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s", srv.port, database))
		require.NoError(t, err)
		return stdlib.OpenDB(*cfg)
	}
	admin := connect("postgres")
	t.Cleanup(func() { admin.Close() })
	srv.wait(t, admin)
	_, err = admin.Exec("CREATE DATABASE asteriskcdrdb")
	require.NoError(t, err)
	db = connect("asteriskcdrdb")
	t.Cleanup(func() { db.Close() })
	for _, stmt := range []string{pgCELTable, pgCDRTable} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/asteriskcdrdb?loc=UTC", srv.port), db
}

// pgBinary finds a PostgreSQL server program on the PATH or where
// Debian's postgresql package puts it.
func pgBinary(name string) string {
	fallback := ""
	if m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name); len(m) > 0 {
		fallback = m[len(m)-1]
	}
	return lookPath(name, fallback)
}

// Asterisk's cel and cdr tables for cel_pgsql and cdr_pgsql, with
// Asterisk's column names; eventtime keeps microseconds.
const pgCELTable = `CREATE TABLE cel (
  id serial PRIMARY KEY,
  eventtype varchar(30) NOT NULL,
  eventtime timestamp NOT NULL,
  cid_name varchar(80) NOT NULL,
  cid_num varchar(80) NOT NULL,
  cid_ani varchar(80) NOT NULL,
  cid_rdnis varchar(80) NOT NULL,
  cid_dnid varchar(80) NOT NULL,
  exten varchar(80) NOT NULL,
  context varchar(80) NOT NULL,
  channame varchar(80) NOT NULL,
  appname varchar(80) NOT NULL,
  appdata varchar(512) NOT NULL,
  amaflags int NOT NULL,
  accountcode varchar(20) NOT NULL,
  uniqueid varchar(150) NOT NULL,
  linkedid varchar(150) NOT NULL,
  peer varchar(80) NOT NULL,
  userdeftype varchar(255) NOT NULL,
  extra varchar(512) NOT NULL
);
CREATE INDEX cel_linkedid ON cel (linkedid);
CREATE INDEX cel_eventtime ON cel (eventtime)`

const pgCDRTable = `CREATE TABLE cdr (
  calldate timestamp NOT NULL,
  clid varchar(80) NOT NULL DEFAULT '',
  src varchar(80) NOT NULL DEFAULT '',
  dst varchar(80) NOT NULL DEFAULT '',
  dcontext varchar(80) NOT NULL DEFAULT '',
  channel varchar(80) NOT NULL DEFAULT '',
  dstchannel varchar(80) NOT NULL DEFAULT '',
  lastapp varchar(80) NOT NULL DEFAULT '',
  lastdata varchar(80) NOT NULL DEFAULT '',
  duration int NOT NULL DEFAULT 0,
  billsec int NOT NULL DEFAULT 0,
  disposition varchar(45) NOT NULL DEFAULT '',
  amaflags int NOT NULL DEFAULT 0,
  accountcode varchar(20) NOT NULL DEFAULT '',
  uniqueid varchar(150) NOT NULL DEFAULT '',
  userfield varchar(255) NOT NULL DEFAULT '',
  linkedid varchar(150) NOT NULL DEFAULT '',
  sequence int NOT NULL DEFAULT 0
);
CREATE INDEX cdr_linkedid ON cdr (linkedid)`

// TestRecoverFromPostgreSQL is TestRecoverFromMariaDB with the tables in a
// real PostgreSQL server.
func TestRecoverFromPostgreSQL(t *testing.T) {
	dsn, db := postgres(t)
	recs := asteriskRecordings(t)
	for _, rec := range recs {
		loadRows(t, db, rec.dir, "", func(at time.Time) any { return at.Format("2006-01-02 15:04:05.000000") },
			func(n int) string { return fmt.Sprintf("$%d", n) })
	}
	recoverFromTables(t, "PostgreSQL", dsn, recs)
}
