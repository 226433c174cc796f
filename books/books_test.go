package books_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
)

// Recover tells a followed call what happened after since, up to until;
// an until of whole seconds (an HTTP Date) is read to its second's end.
// s01: the caller's leg ends at 12:08:14.951881, the callee's at .953681.
func TestRecoverReadsTheGapOfAFollowedCall(t *testing.T) {
	b, err := books.Open(filepath.Join("..", "testdata", "ari", "s01-answered-caller-hangs-up", "cel.csv"))
	require.NoError(t, err)
	at := func(s string) time.Time {
		v, err := time.Parse("15:04:05.000000", s)
		require.NoError(t, err)
		return time.Date(2026, 11, 22, v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.UTC)
	}
	follows := func(id string) bool { return id == "1795349289.0" || id == "1795349289.1" }
	strangers := func(string) bool { return false }
	for _, tc := range []struct {
		name         string
		since, until time.Time
		follows      func(string) bool
		want         []cdr.Kind
	}{
		{"the end, to a precise clock", at("12:08:14.000000"), at("12:08:14.960000"), follows,
			[]cdr.Kind{cdr.KindBridgeLeave, cdr.KindBridgeLeave, cdr.KindVar, cdr.KindHangupRequest, cdr.KindDestroyed, cdr.KindHangupRequest, cdr.KindDestroyed}},
		{"cut at until", at("12:08:14.000000"), at("12:08:14.952000"), follows,
			[]cdr.Kind{cdr.KindBridgeLeave, cdr.KindBridgeLeave, cdr.KindVar, cdr.KindHangupRequest, cdr.KindDestroyed}},
		{"a whole-second until is read to its end", at("12:08:14.000000"), at("12:08:14.000000"), follows,
			[]cdr.Kind{cdr.KindBridgeLeave, cdr.KindBridgeLeave, cdr.KindVar, cdr.KindHangupRequest, cdr.KindDestroyed, cdr.KindHangupRequest, cdr.KindDestroyed}},
		{"a call begun before the gap that kanca never followed", at("12:08:14.000000"), at("12:08:15.500000"), strangers, nil},
		{"a call begun in the gap is told whole", at("12:08:09.000000"), at("12:08:15.500000"), strangers,
			[]cdr.Kind{cdr.KindCreated, cdr.KindCreated, cdr.KindDialplan, cdr.KindDial}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ins, err := books.Recover(context.Background(), b, tc.since, tc.until, tc.follows)
			require.NoError(t, err)
			var kinds []cdr.Kind
			for _, in := range ins {
				assert.True(t, in.Books)
				kinds = append(kinds, in.Kind)
			}
			if len(tc.want) > 0 && tc.want[0] == cdr.KindCreated {
				kinds = kinds[:min(len(kinds), len(tc.want))]
			}
			assert.Equal(t, tc.want, kinds)
		})
	}
}
