// Package status answers what an admin asks first: is the PBX connected
// and since when, how many calls are live, and for each hook how much
// waits, is held or dead and when it last succeeded and failed. A running
// kanca serves it at /status; kanca status asks it there, or reads the
// database when no daemon answers.
package status

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/runlock"
	"github.com/kanca/kanca/version"
)

// Report is the answer.
type Report struct {
	Version  string `json:"version"`
	Database string `json:"database"`
	// From is "daemon" when a running kanca answered, "database" when it
	// was read from the file alone (no PBX nor live calls then).
	From string `json:"from"`
	// Holder is the kanca run holding the database, when read from it.
	Holder    string   `json:"holder,omitempty"`
	PBX       *PBX     `json:"pbx,omitempty"`
	LiveCalls *int     `json:"live_calls,omitempty"`
	Hooks     []Hook   `json:"hooks"`
	Warnings  []string `json:"warnings,omitempty"`
}

// PBX is the connection to the PBX.
type PBX struct {
	Kind       string     `json:"kind"` // asterisk or freeswitch
	Connected  bool       `json:"connected"`
	Since      *time.Time `json:"since,omitempty"`
	Reconnects uint64     `json:"reconnects"` // failed attempts included
	LastError  string     `json:"last_error,omitempty"`
}

// Hook is one hook's queue.
type Hook struct {
	ID          int64      `json:"id"`
	Number      string     `json:"number"`
	URL         string     `json:"url"`
	Enabled     bool       `json:"enabled"`
	Queued      int        `json:"queued"` // pending and retrying
	Held        int        `json:"held"`
	Dead        int        `json:"dead"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastFailure *time.Time `json:"last_failure,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// NoEnabledHook is the warning given when no hook is enabled.
const NoEnabledHook = "no enabled hook: call events go to no receiver (kanca hooks add, or kanca hooks enable)"

// FromStore reads what the database knows: the hooks and their queues.
func FromStore(ctx context.Context, s *hooks.Store) (Report, error) {
	r := Report{Version: version.Get().Short(), Database: s.Path(), From: "database", Hooks: []Hook{}}
	hs, err := s.ListHooks(ctx)
	if err != nil {
		return r, err
	}
	act, err := s.Activity(ctx)
	if err != nil {
		return r, err
	}
	enabled := 0
	for _, h := range hs {
		out := Hook{ID: h.ID, Number: h.Number, URL: h.URL, Enabled: h.Enabled, Held: h.Held}
		if h.Enabled {
			enabled++
		}
		if a := act[h.ID]; a != nil {
			out.Queued = a.ByState[hooks.Pending] + a.ByState[hooks.Retrying]
			out.Dead = a.ByState[hooks.Dead]
			out.LastSuccess, out.LastFailure, out.LastError = when(a.LastSuccess), when(a.LastFailure), a.LastError
		}
		r.Hooks = append(r.Hooks, out)
	}
	if enabled == 0 {
		r.Warnings = append(r.Warnings, NoEnabledHook)
	}
	if h, ok := runlock.Held(s.Path()); ok {
		r.Holder = "kanca run, " + h.String()
	}
	return r, nil
}

func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Print writes r for an admin.
func Print(w io.Writer, r Report, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "kanca:\t%s\n", r.Version)
	fmt.Fprintf(tw, "database:\t%s\n", r.Database)
	switch {
	case r.From == "daemon":
		fmt.Fprintf(tw, "daemon:\trunning (answered)\n")
	case r.Holder != "":
		fmt.Fprintf(tw, "daemon:\t%s (not asked: give --listen for the PBX and live calls)\n", r.Holder)
	default:
		fmt.Fprintf(tw, "daemon:\tnone holds this database\n")
	}
	if p := r.PBX; p != nil {
		state := "not connected"
		if p.Connected {
			state = "connected"
			if p.Since != nil {
				state += fmt.Sprintf(" since %s (%s)", p.Since.Format(time.RFC3339), ago(now, *p.Since))
			}
		}
		fmt.Fprintf(tw, "%s:\t%s\n", p.Kind, state)
		if p.Reconnects > 0 || (!p.Connected && p.LastError != "") {
			fmt.Fprintf(tw, "  reconnects:\t%d\n", p.Reconnects)
			fmt.Fprintf(tw, "  last error:\t%s\n", dash(p.LastError))
		}
	}
	if r.LiveCalls != nil {
		fmt.Fprintf(tw, "live calls:\t%d\n", *r.LiveCalls)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, wn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wn)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOOK\tNUMBER\tENABLED\tQUEUED\tHELD\tDEAD\tLAST SUCCESS\tLAST FAILURE")
	for _, h := range r.Hooks {
		fail := stamp(now, h.LastFailure)
		if h.LastError != "" {
			fail += ": " + oneLine(h.LastError, 60)
		}
		en := "no"
		if h.Enabled {
			en = "yes"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", h.ID, h.Number, en, h.Queued, h.Held, h.Dead,
			stamp(now, h.LastSuccess), fail)
	}
	return tw.Flush()
}

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

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
