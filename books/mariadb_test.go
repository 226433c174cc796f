package books_test

import (
	"database/sql"
	"fmt"
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
	srv := newServer(t, "MariaDB", "mariadb-server", server != "" && install != "")
	user := []string{}
	if os.Geteuid() == 0 {
		user = []string{"--user=root"}
	}
	data := filepath.Join(srv.dir, "data")
	out, err := exec.Command(install, append([]string{"--no-defaults", "--datadir=" + data,
		"--auth-root-authentication-method=normal", "--skip-test-db"}, user...)...).CombinedOutput()
	require.NoError(t, err, "mariadb-install-db: %s", out)
	srv.start(t, exec.Command(server, append([]string{"--no-defaults", "--datadir=" + data,
		"--socket=" + filepath.Join(srv.dir, "sock"), "--pid-file=" + filepath.Join(srv.dir, "pid"),
		"--bind-address=127.0.0.1", fmt.Sprintf("--port=%d", srv.port), "--skip-grant-tables",
		"--innodb-buffer-pool-size=16M", "--skip-log-bin"}, user...)...), func(cmd *exec.Cmd) {
		cmd.Process.Kill()
		cmd.Wait()
	})

	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User = "tcp", fmt.Sprintf("127.0.0.1:%d", srv.port), "root"
	cfg.ParseTime, cfg.Loc = true, time.UTC
	conn, err := mysql.NewConnector(cfg)
	require.NoError(t, err)
	db = sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	srv.wait(t, db)
	for _, stmt := range []string{"CREATE DATABASE asteriskcdrdb", celTable, cdrTable} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	return fmt.Sprintf("mysql://root@127.0.0.1:%d/asteriskcdrdb?loc=UTC", srv.port), db
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

// loadRows copies a recording's cel.csv and cdr.csv into the tables (of
// database prefix, "asteriskcdrdb." or ""), as the PBX would have written
// them while the calls ran: eventtime the PBX's local time (UTC here) as
// stamp gives it, placeholders as place numbers them.
func loadRows(t *testing.T, db *sql.DB, dir, prefix string, stamp func(time.Time) any, place func(n int) string) {
	t.Helper()
	cel := readCSV(t, filepath.Join(dir, "cel.csv"))
	insert(t, db, `INSERT INTO `+prefix+`cel (eventtype, eventtime, cid_name, cid_num, cid_ani, cid_rdnis,
		cid_dnid, exten, context, channame, appname, appdata, amaflags, accountcode, uniqueid, linkedid, peer,
		userdeftype, extra) VALUES `, 19, len(cel), place, func(i int) []any {
		r := cel[i]
		return []any{r[0], stamp(epochTime(t, r[1])), r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
			3, r[13], r[14], r[15], r[16], r[18], r[19]}
	})
	cdrs := readCSV(t, filepath.Join(dir, "cdr.csv"))
	insert(t, db, `INSERT INTO `+prefix+`cdr (calldate, clid, src, dst, dcontext, channel, dstchannel,
		lastapp, lastdata, duration, billsec, disposition, uniqueid, linkedid, userfield) VALUES `, 15, len(cdrs), place, func(i int) []any {
		r := cdrs[i]
		return []any{stamp(epochTime(t, r[11])), r[3], r[0], r[1], r[2], r[4], r[5], r[6], r[7], r[14], r[15], r[16], r[18], r[19], r[20]}
	})
}

// mysqlPlace is MySQL's placeholder, whatever its number.
func mysqlPlace(int) string { return "?" }

func insert(t *testing.T, db *sql.DB, head string, cols, n int, place func(n int) string, row func(int) []any) {
	t.Helper()
	for lo := 0; lo < n; lo += 400 {
		hi := min(n, lo+400)
		var args []any
		var vals []string
		for i := lo; i < hi; i++ {
			var ps []string
			for range cols {
				ps = append(ps, place(len(args)+len(ps)+1))
			}
			args = append(args, row(i)...)
			vals = append(vals, "("+strings.Join(ps, ",")+")")
		}
		_, err := db.Exec(head+strings.Join(vals, ","), args...)
		require.NoError(t, err)
	}
}
