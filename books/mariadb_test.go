package books_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/stretchr/testify/require"
)

// mariadb starts a MariaDB server of its own for the test, on 127.0.0.1
// and a free port, with an empty asteriskcdrdb holding Asterisk's cel and
// cdr tables, and returns its kanca DSN and a connection. Under CI=true a
// missing MariaDB fails the test; elsewhere it skips.
func mariadb(t *testing.T) (dsn string, db *sql.DB) {
	t.Helper()
	server := lookPath("mariadbd", "/usr/sbin/mariadbd")
	install := lookPath("mariadb-install-db", "/usr/bin/mariadb-install-db")
	if server == "" || install == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("MariaDB is not installed (Debian package mariadb-server); .ci/run installs it")
		}
		t.Skip("MariaDB is not installed (Debian package mariadb-server)")
	}
	// A socket path must stay short: t.TempDir's can exceed its limit.
	dir, err := os.MkdirTemp("", "kanca-mariadb-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	user := []string{}
	if os.Geteuid() == 0 {
		user = []string{"--user=root"}
	}
	data := filepath.Join(dir, "data")
	out, err := exec.Command(install, append([]string{"--no-defaults", "--datadir=" + data,
		"--auth-root-authentication-method=normal", "--skip-test-db"}, user...)...).CombinedOutput()
	require.NoError(t, err, "mariadb-install-db: %s", out)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	require.NoError(t, err)
	cmd := exec.Command(server, append([]string{"--no-defaults", "--datadir=" + data,
		"--socket=" + filepath.Join(dir, "sock"), "--pid-file=" + filepath.Join(dir, "pid"),
		"--bind-address=127.0.0.1", fmt.Sprintf("--port=%d", port), "--skip-grant-tables",
		"--innodb-buffer-pool-size=16M", "--skip-log-bin"}, user...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})

	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User = "tcp", fmt.Sprintf("127.0.0.1:%d", port), "root"
	cfg.ParseTime, cfg.Loc = true, time.UTC
	conn, err := mysql.NewConnector(cfg)
	require.NoError(t, err)
	db = sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	deadline := time.Now().Add(60 * time.Second)
	for db.PingContext(context.Background()) != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("MariaDB did not start: %s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, stmt := range []string{"CREATE DATABASE asteriskcdrdb", celTable, cdrTable} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	return fmt.Sprintf("mysql://root@127.0.0.1:%d/asteriskcdrdb?loc=UTC", port), db
}

func lookPath(name, fallback string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback
	}
	return ""
}

// Asterisk's CEL and CDR tables as FreePBX creates them in asteriskcdrdb,
// with microsecond event times as Asterisk's cel_odbc writes them when the
// column keeps them.
const celTable = `CREATE TABLE asteriskcdrdb.cel (
  id int(11) NOT NULL AUTO_INCREMENT,
  eventtype varchar(30) NOT NULL,
  eventtime datetime(6) NOT NULL,
  cid_name varchar(80) NOT NULL,
  cid_num varchar(80) NOT NULL,
  cid_ani varchar(80) NOT NULL,
  cid_rdnis varchar(80) NOT NULL,
  cid_dnid varchar(80) NOT NULL,
  exten varchar(80) NOT NULL,
  context varchar(80) NOT NULL,
  channame varchar(80) NOT NULL,
  appname varchar(80) NOT NULL,
  appdata varchar(80) NOT NULL,
  amaflags int(11) NOT NULL,
  accountcode varchar(20) NOT NULL,
  uniqueid varchar(32) NOT NULL,
  linkedid varchar(32) NOT NULL,
  peer varchar(80) NOT NULL,
  userdeftype varchar(255) NOT NULL,
  extra varchar(512) NOT NULL,
  PRIMARY KEY (id),
  KEY uniqueid_index (uniqueid),
  KEY linkedid_index (linkedid),
  KEY eventtime_index (eventtime)
)`

const cdrTable = `CREATE TABLE asteriskcdrdb.cdr (
  calldate datetime NOT NULL DEFAULT '0000-00-00 00:00:00',
  clid varchar(80) NOT NULL DEFAULT '',
  src varchar(80) NOT NULL DEFAULT '',
  dst varchar(80) NOT NULL DEFAULT '',
  dcontext varchar(80) NOT NULL DEFAULT '',
  channel varchar(80) NOT NULL DEFAULT '',
  dstchannel varchar(80) NOT NULL DEFAULT '',
  lastapp varchar(80) NOT NULL DEFAULT '',
  lastdata varchar(80) NOT NULL DEFAULT '',
  duration int(11) NOT NULL DEFAULT 0,
  billsec int(11) NOT NULL DEFAULT 0,
  disposition varchar(45) NOT NULL DEFAULT '',
  amaflags int(11) NOT NULL DEFAULT 0,
  accountcode varchar(20) NOT NULL DEFAULT '',
  uniqueid varchar(32) NOT NULL DEFAULT '',
  userfield varchar(255) NOT NULL DEFAULT '',
  did varchar(50) NOT NULL DEFAULT '',
  recordingfile varchar(255) NOT NULL DEFAULT '',
  linkedid varchar(32) NOT NULL DEFAULT '',
  peeraccount varchar(80) NOT NULL DEFAULT '',
  sequence int(11) NOT NULL DEFAULT 0,
  KEY calldate (calldate),
  KEY linkedid (linkedid)
)`

// loadRows copies a recording's cel.csv and cdr.csv into the tables, as
// the PBX would have written them while the calls ran.
func loadRows(t *testing.T, db *sql.DB, dir string) {
	t.Helper()
	cel := readCSV(t, filepath.Join(dir, "cel.csv"))
	insert(t, db, `INSERT INTO asteriskcdrdb.cel (eventtype, eventtime, cid_name, cid_num, cid_ani, cid_rdnis,
		cid_dnid, exten, context, channame, appname, appdata, amaflags, accountcode, uniqueid, linkedid, peer,
		userdeftype, extra) VALUES `, 19, len(cel), func(i int) []any {
		r := cel[i]
		return []any{r[0], epochTime(t, r[1]), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
			3, r[13], r[14], r[15], r[16], r[18], r[19]}
	})
	cdrs := readCSV(t, filepath.Join(dir, "cdr.csv"))
	insert(t, db, `INSERT INTO asteriskcdrdb.cdr (calldate, clid, src, dst, dcontext, channel, dstchannel,
		lastapp, lastdata, duration, billsec, disposition, uniqueid, linkedid, userfield) VALUES `, 15, len(cdrs), func(i int) []any {
		r := cdrs[i]
		return []any{epochTime(t, r[11]), r[3], r[0], r[1], r[2], r[4], r[5], r[6], r[7], r[14], r[15], r[16], r[18], r[19], r[20]}
	})
}

func insert(t *testing.T, db *sql.DB, head string, cols, n int, row func(int) []any) {
	t.Helper()
	place := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for lo := 0; lo < n; lo += 400 {
		hi := min(n, lo+400)
		var args []any
		var vals []string
		for i := lo; i < hi; i++ {
			args = append(args, row(i)...)
			vals = append(vals, place)
		}
		_, err := db.Exec(head+strings.Join(vals, ","), args...)
		require.NoError(t, err)
	}
}
