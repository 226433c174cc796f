// Package status answers what an admin asks first: is the PBX connected
// and since when, how many calls are live, and for each hook how much
// waits, is held or dead and when it last succeeded and failed. A running
// kanca serves it at /status; kanca status asks it there, or reads the
// database when no daemon answers.
package status

import (
	"context"
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
	Since      *time.Time `json:"since,omitempty"` // when it connected, or when it went down
	Reconnects uint64     `json:"reconnects"`      // failed attempts included
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

// InCluster is said by a listener (kanca run --nats): its hooks and
// deliveries are the cluster's.
const InCluster = "this kanca forwards call events to NATS: the hooks and deliveries are the cluster's (kanca hooks list --nats URL, kanca deliveries list --nats URL)"

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
