package hooks

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
)

// said keeps each record's level and message.
type said struct{ lines *[]string }

func (s said) Enabled(context.Context, slog.Level) bool { return true }
func (s said) Handle(_ context.Context, r slog.Record) error {
	*s.lines = append(*s.lines, r.Level.String()+" "+r.Message)
	return nil
}
func (s said) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s said) WithGroup(string) slog.Handler      { return s }

// A receiver's outage is told at WARN where it begins and where it ends;
// the attempts in between at INFO. Each hook has its own.
func TestReceiversTellBothEndsOfAnOutage(t *testing.T) {
	var got []string
	r := NewReceivers(slog.New(said{&got}))
	a, other := Hook{ID: 1, Number: pbx, URL: "http://127.0.0.1:1/a"}, Hook{ID: 2, Number: pbx, URL: "http://127.0.0.1:1/b"}
	r.Delivered(a)
	r.Failed(a, "d1", "call_init", 1, "HTTP 500", "soon")
	r.Failed(a, "d1", "call_init", 2, "HTTP 500", "later")
	r.Failed(other, "d2", "call_init", 1, "connection refused", "soon")
	r.Delivered(a)
	r.Delivered(a)

	assert.Equal(t, []string{
		"WARN receiver failing: its deliveries are kept and retried",
		"INFO delivery failed, will retry",
		"WARN receiver failing: its deliveries are kept and retried",
		"WARN receiver answering again",
	}, got)
}
