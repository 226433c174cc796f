package books_test

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
			got, err := books.Recover(context.Background(), b, tc.since, tc.until, books.Known{Follows: tc.follows, Listed: strangers, Up: strangers})
			require.NoError(t, err)
			var kinds []cdr.Kind
			for _, in := range got.Inputs {
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

// A FreeSWITCH call whose caller's leg is still up has no record of that
// leg yet, only of the legs that ended (g02: 1000's, which took the call
// and transferred it to 1001). Listed, the call is the list's to adopt,
// and 1000's leg is to join it; not listed, it is told by neither.
func TestRecoverJoinsLegsOfACallTheListShows(t *testing.T) {
	b, err := books.Open(filepath.Join("..", "testdata", "esl", "g02_blind_transfer_1000_to_1001", "cdr"))
	require.NoError(t, err)
	const caller, callee = "8cc38b8c-bb13-40f5-b278-6d3979f6e3c2", "151ca41a-4a1f-4c5c-82d6-d903faeed291"
	since := time.Date(2026, 12, 5, 8, 44, 57, 0, time.UTC)
	until := since.Add(8500 * time.Millisecond) // 1001 rings, the caller is up
	none := func(string) bool { return false }

	got, err := books.Recover(context.Background(), b, since, until, books.Known{Follows: none, Listed: func(id string) bool { return id == caller }, Up: none})
	require.NoError(t, err)
	assert.Empty(t, got.Inputs, "a call the list shows is the list's to tell")
	require.Len(t, got.Joins, 1)
	joined := got.Joins[caller]
	require.NotEmpty(t, joined)
	for _, in := range joined {
		assert.Equal(t, callee, in.Channel.ID, "only the leg that ended is in the books")
		assert.Equal(t, caller, in.Channel.LinkedID)
		assert.True(t, in.Books)
	}
	assert.Equal(t, cdr.KindCreated, joined[0].Kind)
	assert.True(t, slices.ContainsFunc(joined, func(in cdr.Input) bool { return in.Kind == cdr.KindDestroyed }), "its end")

	got, err = books.Recover(context.Background(), b, since, until, books.Known{Follows: none, Listed: none, Up: none})
	require.NoError(t, err)
	assert.Empty(t, got.Inputs)
	assert.Empty(t, got.Joins, "a call the list does not show ended before it: its caller's record tells it")
}

// wholeSecondCopy writes the CEL and CDR of recording rec with whole-second
// event times, as FreePBX's DATETIME columns keep them, and returns the
// CEL file's path.
func wholeSecondCopy(t *testing.T, rec string) string {
	t.Helper()
	dir := t.TempDir()
	in, err := os.Open(filepath.Join("..", "testdata", "ari", rec, "cel.csv"))
	require.NoError(t, err)
	defer in.Close()
	rows, err := csv.NewReader(in).ReadAll()
	require.NoError(t, err)
	for _, r := range rows {
		r[1], _, _ = strings.Cut(r[1], ".") // eventtime: epoch seconds
	}
	out, err := os.Create(filepath.Join(dir, "cel.csv"))
	require.NoError(t, err)
	require.NoError(t, csv.NewWriter(out).WriteAll(rows))
	require.NoError(t, out.Close())
	b, err := os.ReadFile(filepath.Join("..", "testdata", "ari", rec, "cdr.csv"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cdr.csv"), b, 0o644))
	return filepath.Join(dir, "cel.csv")
}

// Books in whole seconds stamp every event of a second at its start. s01
// began at 12:08:09.920, stamped 12:08:09: killed at 09.500, kanca did
// not hear it, and only the store can say so (it holds no such call);
// a call it holds was heard. Nothing said, it is taken as heard, as
// before.
func TestWholeSecondsCallBegunInTheSecondTheGapBegan(t *testing.T) {
	b, err := books.Open(wholeSecondCopy(t, "s01-answered-caller-hangs-up"))
	require.NoError(t, err)
	since := time.Date(2026, 11, 22, 12, 8, 9, 500_000_000, time.UTC)
	until := since.Add(10 * time.Second)
	none := func(string) bool { return false }
	for _, tc := range []struct {
		name string
		told func(string) bool
		want bool
	}{
		{"the store holds none of its calls", none, true},
		{"the store holds it", func(id string) bool { return id == "1795349289.0" }, false},
		{"the store cannot say", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := books.Recover(context.Background(), b, since, until, books.Known{Follows: none, Listed: none, Up: none, Told: tc.told})
			require.NoError(t, err)
			if !tc.want {
				assert.Empty(t, got.Inputs)
				return
			}
			require.NotEmpty(t, got.Inputs)
			assert.Equal(t, cdr.KindCreated, got.Inputs[0].Kind)
			assert.Equal(t, cdr.KindDestroyed, got.Inputs[len(got.Inputs)-1].Kind, "told whole")
		})
	}
}

// And in the second kanca came back in: a leg the list shows up has not
// ended, whatever a row of that second says (it may be of an event after
// the list), so its end is the stream's; its hangup request, which may
// have come before the subscription, is kept. s01's caller hung up at
// 12:08:14.951, stamped 14.
func TestWholeSecondsEndOfALegTheListShowsIsTheStreams(t *testing.T) {
	b, err := books.Open(wholeSecondCopy(t, "s01-answered-caller-hangs-up"))
	require.NoError(t, err)
	since := time.Date(2026, 11, 22, 12, 8, 9, 0, time.UTC)
	until := since.Add(5*time.Second + 500*time.Millisecond)
	none := func(string) bool { return false }
	caller := func(id string) bool { return id == "1795349289.0" }
	ends := func(up func(string) bool) (hangups, destroys []string) {
		got, err := books.Recover(context.Background(), b, since.Add(-time.Millisecond), until, books.Known{Follows: none, Listed: up, Up: up})
		require.NoError(t, err)
		for _, in := range got.Inputs {
			switch in.Kind {
			case cdr.KindHangupRequest:
				hangups = append(hangups, in.Channel.ID)
			case cdr.KindDestroyed:
				destroys = append(destroys, in.Channel.ID)
			}
		}
		return hangups, destroys
	}
	hangups, destroys := ends(none)
	assert.ElementsMatch(t, []string{"1795349289.0", "1795349289.1"}, hangups)
	assert.ElementsMatch(t, []string{"1795349289.0", "1795349289.1"}, destroys)
	hangups, destroys = ends(caller)
	assert.ElementsMatch(t, []string{"1795349289.0", "1795349289.1"}, hangups)
	assert.Equal(t, []string{"1795349289.1"}, destroys, "the caller's end is the stream's")
}

// A call kanca follows takes, of the rows of the second it stopped
// hearing the PBX in, those that say nothing new when told again: s01's
// answers at 12:08:11.937, stamped 11, with kanca killed at 11.500, are
// told; the bridge the two legs entered then is not (a step told twice
// comes out wrong; the list says who talks to whom).
func TestWholeSecondsAnswerInTheSecondTheGapBegan(t *testing.T) {
	b, err := books.Open(wholeSecondCopy(t, "s01-answered-caller-hangs-up"))
	require.NoError(t, err)
	since := time.Date(2026, 11, 22, 12, 8, 11, 500_000_000, time.UTC)
	follows := func(id string) bool { return id == "1795349289.0" || id == "1795349289.1" }
	got, err := books.Recover(context.Background(), b, since, since.Add(time.Second), books.Known{Follows: follows, Listed: follows, Up: follows})
	require.NoError(t, err)
	up := map[string]bool{}
	for _, in := range got.Inputs {
		assert.Contains(t, []cdr.Kind{cdr.KindState, cdr.KindHangupRequest, cdr.KindDestroyed}, in.Kind, "%s of %s", in.Kind, in.Channel.ID)
		if in.Kind == cdr.KindState && in.Channel.State == "Up" {
			up[in.Channel.ID] = true
		}
	}
	assert.Equal(t, map[string]bool{"1795349289.0": true, "1795349289.1": true}, up)
}

// A trunk the PBX dials for a number that no row names yet (t07: 1000
// did not answer, the dialplan forwards to 05321234567 through the trunk,
// read while the mobile rings) names no dial: told as a Dial of the
// trunk, it would be a step to an extension called "trunk". The list
// shows the caller's Dial and its number.
func TestTrunkDialledForANumberNoRowNamesIsNoDial(t *testing.T) {
	b, err := books.Open(filepath.Join("..", "testdata", "ari", "t07_forward_to_mobile_after_no_answer", "cel.csv"))
	require.NoError(t, err)
	since := time.Date(2026, 12, 5, 9, 1, 23, 843_000_000, time.UTC)
	until := time.Date(2026, 12, 5, 9, 1, 29, 129_000_000, time.UTC)
	follows := func(id string) bool { return id == "1796461278.66" || id == "1796461278.67" }
	none := func(string) bool { return false }
	got, err := books.Recover(context.Background(), b, since, until, books.Known{Follows: follows, Listed: none, Up: none})
	require.NoError(t, err)
	var created bool
	for _, in := range got.Inputs {
		if in.Kind == cdr.KindCreated && in.Channel.Name == "PJSIP/trunk-0000003e" {
			created = true
		}
		assert.NotContains(t, in.Channel.AppData, "PJSIP/trunk", "%s of %s", in.Kind, in.Channel.Name)
		assert.NotEqual(t, "trunk", in.DialString, "%s of %s", in.Kind, in.Channel.Name)
	}
	assert.True(t, created, "the trunk's leg is told")
}
