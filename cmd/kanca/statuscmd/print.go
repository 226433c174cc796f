package statuscmd

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kanca/kanca/cmd/kanca/table"
	"github.com/kanca/kanca/status"
)

// printReport lays r out for an admin, through the printer every command uses.
func printReport(w io.Writer, r status.Report, now time.Time) error {
	daemon := "none holds this database"
	switch {
	case r.From == "daemon":
		daemon = "running (answered)"
	case r.Holder != "":
		daemon = r.Holder + " (not asked: give --listen for the PBX and live calls)"
	}
	fs := []table.Field{table.F("kanca", r.Version), table.F("database", r.Database), table.F("daemon", daemon)}
	if p := r.PBX; p != nil {
		state := "not connected"
		if p.Connected {
			state = "connected"
		}
		if p.Since != nil {
			state += fmt.Sprintf(" since %s (%s)", p.Since.Format(time.RFC3339), ago(now, *p.Since))
		}
		fs = append(fs, table.F(p.Kind, state))
		if p.Reconnects > 0 || (!p.Connected && p.LastError != "") {
			last := table.Dash(p.LastError)
			if p.Connected && p.LastError != "" {
				// Over: why the connection before this one ended.
				last = "before this connection: " + last
			}
			fs = append(fs, table.F("  reconnects", strconv.FormatUint(p.Reconnects, 10)),
				table.F("  last error", last))
		}
	}
	if r.LiveCalls != nil {
		fs = append(fs, table.F("live calls", strconv.Itoa(*r.LiveCalls)))
	}
	if err := table.Fields(w, fs); err != nil {
		return err
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
	fmt.Fprintln(w)
	var rows [][]string
	for _, h := range r.Hooks {
		fail := stamp(now, h.LastFailure)
		if h.LastError != "" {
			fail += ": " + oneLine(requestPrefix.ReplaceAllString(h.LastError, ""), 60)
		}
		rows = append(rows, []string{strconv.FormatInt(h.ID, 10), h.Number, table.YesNo(h.Enabled),
			strconv.Itoa(h.Queued), strconv.Itoa(h.Held), strconv.Itoa(h.Dead), stamp(now, h.LastSuccess), fail})
	}
	return table.Columns(w, []string{"HOOK", "NUMBER", "ENABLED", "QUEUED", "HELD", "DEAD", "LAST SUCCESS", "LAST FAILURE"}, rows)
}

// requestPrefix is what Go's HTTP client puts before a transport error
// (Post "URL": ...): the row names the hook already, and the cause is what
// the column has room for.
var requestPrefix = regexp.MustCompile(`^[A-Z][a-z]+ "[^"]*": `)

func stamp(now time.Time, t *time.Time) string {
	if t == nil {
		return "-"
	}
	return ago(now, *t)
}

// ago is a time as an admin reads it at a glance: "3m ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h ago"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d ago"
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
