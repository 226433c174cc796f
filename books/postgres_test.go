package books_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/books"
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
	if initdb == "" || server == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL is not installed (Debian package postgresql); .ci/run installs it")
		}
		t.Skip("PostgreSQL is not installed (Debian package postgresql)")
	}
	// A socket path must stay short: t.TempDir's can exceed its limit.
	dir, err := os.MkdirTemp("", "kanca-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	as := func(cmd *exec.Cmd) *exec.Cmd { return cmd }
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "run by root, the server needs the postgres user")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
		as = func(cmd *exec.Cmd) *exec.Cmd {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
			return cmd
		}
	}
	data := filepath.Join(dir, "data")
	out, err := as(exec.Command(initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")).CombinedOutput()
	require.NoError(t, err, "initdb: %s", out)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	require.NoError(t, err)
	cmd := as(exec.Command(server, "-D", data, "-k", dir, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "shared_buffers=16MB", "-c", "TimeZone=UTC"))
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT) // a fast shutdown
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})

	connect := func(database string) *sql.DB {
		cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s", port, database))
		require.NoError(t, err)
		return stdlib.OpenDB(*cfg)
	}
	admin := connect("postgres")
	t.Cleanup(func() { admin.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for admin.PingContext(context.Background()) != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("PostgreSQL did not start: %s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = admin.Exec("CREATE DATABASE asteriskcdrdb")
	require.NoError(t, err)
	db = connect("asteriskcdrdb")
	t.Cleanup(func() { db.Close() })
	for _, stmt := range []string{pgCELTable, pgCDRTable} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/asteriskcdrdb?loc=UTC", port), db
}

// pgBinary finds a PostgreSQL server program on the PATH or where
// Debian's postgresql package puts it.
func pgBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(m) > 0 {
		return m[len(m)-1]
	}
	return ""
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
		loadPgRows(t, db, rec.dir)
	}
	bk, err := books.Open(dsn)
	require.NoError(t, err)
	defer bk.Close()
	got, differ := score(t, recs, func(recording) books.Books { return bk }, celEstimates)
	t.Logf("the same as a run that never stopped: from PostgreSQL %v", got)
	requireOnly(t, differ, celDiffer)
}

// loadPgRows copies a recording's cel.csv and cdr.csv into the tables,
// eventtime as the PBX's local time (UTC here) with its microseconds.
func loadPgRows(t *testing.T, db *sql.DB, dir string) {
	t.Helper()
	stamp := func(s string) string { return epochTime(t, s).Format("2006-01-02 15:04:05.000000") }
	cel := readCSV(t, filepath.Join(dir, "cel.csv"))
	insertPg(t, db, `INSERT INTO cel (eventtype, eventtime, cid_name, cid_num, cid_ani, cid_rdnis,
		cid_dnid, exten, context, channame, appname, appdata, amaflags, accountcode, uniqueid, linkedid, peer,
		userdeftype, extra) VALUES `, 19, len(cel), func(i int) []any {
		r := cel[i]
		return []any{r[0], stamp(r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
			3, r[13], r[14], r[15], r[16], r[18], r[19]}
	})
	cdrs := readCSV(t, filepath.Join(dir, "cdr.csv"))
	insertPg(t, db, `INSERT INTO cdr (calldate, clid, src, dst, dcontext, channel, dstchannel,
		lastapp, lastdata, duration, billsec, disposition, uniqueid, linkedid, userfield) VALUES `, 15, len(cdrs), func(i int) []any {
		r := cdrs[i]
		return []any{stamp(r[11]), r[3], r[0], r[1], r[2], r[4], r[5], r[6], r[7], r[14], r[15], r[16], r[18], r[19], r[20]}
	})
}

func insertPg(t *testing.T, db *sql.DB, head string, cols, n int, row func(int) []any) {
	t.Helper()
	for lo := 0; lo < n; lo += 400 {
		hi := min(n, lo+400)
		var args []any
		var vals []string
		for i := lo; i < hi; i++ {
			var place []string
			for range cols {
				args = append(args, nil)
				place = append(place, fmt.Sprintf("$%d", len(args)))
			}
			copy(args[len(args)-cols:], row(i))
			vals = append(vals, "("+strings.Join(place, ",")+")")
		}
		_, err := db.Exec(head+strings.Join(vals, ","), args...)
		require.NoError(t, err)
	}
}
