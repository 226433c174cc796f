package books_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
)

// What the books of each recorded shape cannot state, by the field a
// recovered call then names in its record's "estimated". A call whose
// webhooks differ from a run that never stopped in such fields alone,
// and only where its record names them, counts as the same; nothing else
// is accepted.
//
//   - call_record: the CEL has no row for a recording (MixMonitor), so
//     every call the CEL tells names it (a call kanca saw recorded
//     aside); it differs where the recording began in the gap (t06).
//   - sip_hangup_disposition, hangup_cause: the caller's hangup request
//     came in the millisecond before kanca was back and its HANGUP row
//     after the books were read, so the call ended live with no request:
//     who hung up is inferred, and the cause with it (s03, s04, s09).
//
// FreeSWITCH's books leave nothing to accept: an answer the gap hid in a
// leg still up when kanca is back (not in the files yet) is the one its
// session gives (uuid_dump), exact.
var (
	celEstimates = map[string][]string{
		"s03-no-answer-timeout":                {"hangup_cause"},
		"s04-caller-abandons-ringing":          {"hangup_cause", "sip_hangup_disposition"},
		"s09-inbound-fax":                      {"sip_hangup_disposition"},
		"s07-queue-member-answers":             {"sip_hangup_disposition"},
		"s12-ring-group":                       {"sip_hangup_disposition"},
		"t03_call_pickup_star8":                {"sip_hangup_disposition"},
		"s14-answered-with-channelvars":        {"sip_hangup_disposition"},
		"t04_park_and_retrieve":                {"sip_hangup_disposition"},
		"t05_voicemail_after_no_answer":        {"sip_hangup_disposition"},
		"t06_recorded_call_mixmonitor":         {"call_record", "sip_hangup_disposition"},
		"t08_refer_blind_transfer_to_external": {"sip_hangup_disposition"},
		// Back in the millisecond the call ended, before the caller's
		// HANGUP row: the call ends when the books last told of it, and
		// who hung up is inferred.
		"t01_attended_transfer_star2": {"sip_hangup_disposition"},
		"run1_10cps":                  {"sip_hangup_disposition"},
	}
)

// celDiffer are the calls recovered from the CEL that still differ, by
// recording and kill, each for a reason the books cannot answer when
// kanca reads them or that kanca's adoption does not yet tell. The list
// may only shrink.
var celDiffer = []string{
	// The CEL has no row for ReceiveFAX: a fax call begun in the gap is
	// told as a fax (from the CDR's lastapp when it ended by then, from
	// the list's ReceiveFAX when it is still up), but its fax_init at
	// the leg's answer, half a second early: nothing the PBX keeps says
	// when ReceiveFAX began.
	"s09-inbound-fax 12:11:45.678",
	"s09-inbound-fax 12:11:45.678",
}

// TestRecoverFromMariaDB kills kanca in the middle of the recorded
// Asterisk runs, lets the calls run on into a real MariaDB holding
// Asterisk's cel and cdr tables, restarts it, and compares every call's
// webhooks with those of a run that never stopped.
func TestRecoverFromMariaDB(t *testing.T) {
	dsn, db := mariadb(t)
	recs := asteriskRecordings(t)
	for _, rec := range recs {
		loadRows(t, db, rec.dir, "asteriskcdrdb.", func(at time.Time) any { return at }, mysqlPlace)
	}
	blind, _ := score(t, recs, nil, nil)
	t.Logf("without books %v", blind)
	got := recoverFromTables(t, "MariaDB", dsn, recs)
	require.Greater(t, got.touchedSame, blind.touchedSame, "the books change nothing")

	// FreePBX's own schema keeps eventtime in whole seconds (DATETIME).
	t.Run("whole seconds", func(t *testing.T) {
		for _, stmt := range []string{"CREATE DATABASE freepbx",
			strings.Replace(strings.Replace(celTable, "asteriskcdrdb.", "freepbx.", 1), "datetime(6)", "datetime", 1),
			strings.Replace(cdrTable, "asteriskcdrdb.", "freepbx.", 1),
			"INSERT INTO freepbx.cel SELECT id, eventtype, CAST(eventtime AS DATETIME(0)), cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten, context, channame, appname, appdata, amaflags, accountcode, uniqueid, linkedid, peer, userdeftype, extra FROM asteriskcdrdb.cel",
			"INSERT INTO freepbx.cdr SELECT * FROM asteriskcdrdb.cdr",
		} {
			_, err := db.Exec(stmt)
			require.NoError(t, err, stmt)
		}
		bk, err := books.Open(strings.Replace(dsn, "/asteriskcdrdb?", "/freepbx?", 1))
		require.NoError(t, err)
		defer bk.Close()
		// Whole seconds say in which second each event fell, not how far
		// apart two were within it: a talk duration may be a second off,
		// and the record says so. The rows with fractions say when each
		// was written.
		whole := map[string][]string{}
		for _, rec := range recs {
			name := filepath.Base(rec.dir)
			whole[name] = append(slices.Clone(celEstimates[name]), "talk_duration")
		}
		truth, err := books.Open(dsn)
		require.NoError(t, err)
		defer truth.Close()
		got, differ := score(t, recs, func(recording) books.Books { return trueTimes{Books: bk, truth: truth} }, whole)
		t.Logf("the same as a run that never stopped: from whole seconds %v", got)
		// Shown each row once its event happened (trueTimes), as a PBX
		// writes them, the whole seconds lose nothing the fractions keep:
		// the same calls differ.
		requireOnly(t, differ, celDiffer)
	})
}

// TestRecoverFromCELFiles does the same with the cel_custom and cdr_custom
// CSV files of the scenario recordings (the load run is recovered from
// the same rows in MariaDB above).
func TestRecoverFromCELFiles(t *testing.T) {
	recs := slices.DeleteFunc(asteriskRecordings(t), func(r recording) bool { return len(r.ins) > 5000 })
	got, differ := score(t, recs, func(rec recording) books.Books {
		b, err := books.Open(filepath.Join(rec.dir, "cel.csv"))
		require.NoError(t, err)
		return b
	}, celEstimates)
	t.Logf("the same as a run that never stopped: from CSV %v", got)
	requireOnly(t, differ, celDiffer)
}

// recoverFromTables scores the recordings with the cel and cdr tables
// dsn names, which hold their rows, and requires that only the calls
// celDiffer lists differ (none of the load run).
func recoverFromTables(t *testing.T, name, dsn string, recs []recording) tally {
	t.Helper()
	bk, err := books.Open(dsn)
	require.NoError(t, err)
	defer bk.Close()
	got, differ := score(t, recs, func(recording) books.Books { return bk }, celEstimates)
	t.Logf("the same as a run that never stopped: from %s %v", name, got)
	requireOnly(t, differ, celDiffer)
	return got
}

// requireOnly fails unless the calls that differ are those known, by
// recording and kill.
func requireOnly(t *testing.T, differ, known []string) {
	t.Helper()
	var keys []string
	for _, d := range differ {
		f := strings.Fields(d)
		keys = append(keys, f[0]+" "+f[1])
	}
	slices.Sort(keys)
	known = slices.Clone(known)
	slices.Sort(known)
	if !slices.Equal(keys, known) {
		for _, d := range differ {
			t.Log("differs: ", d)
		}
	}
	require.Equal(t, known, keys, "the calls that differ from a run that never stopped")
}

// TestRecoverFromJSONCDR does the same with the FreeSWITCH recordings and
// the directory of mod_json_cdr files FreeSWITCH wrote for them.
func TestRecoverFromJSONCDR(t *testing.T) {
	recoverFreeSWITCH(t, "mod_json_cdr files", freeswitchRecordings(t), func(rec recording) books.Books { return jsonCDR(t, rec) })
}

// freeswitchRecordings are the recorded FreeSWITCH runs, each with the
// mod_json_cdr files FreeSWITCH wrote in its cdr directory.
func freeswitchRecordings(t *testing.T) []recording {
	t.Helper()
	dirs, err := filepath.Glob("../testdata/esl/[fg]*")
	require.NoError(t, err)
	require.NotEmpty(t, dirs)
	var recs []recording
	for _, dir := range dirs {
		recs = append(recs, loadRecording(t, dir, "esl"))
	}
	return recs
}

// recoverFreeSWITCH scores the FreeSWITCH recordings with the books open
// gives each, named name, and requires that of the calls that ended in
// the gap only those jsonDiffer lists differ. It returns the figures and
// the calls that differ.
func recoverFreeSWITCH(t *testing.T, name string, recs []recording, open func(recording) books.Books) (tally, []string) {
	t.Helper()
	blind, _ := score(t, recs, nil, nil)
	got, differ := score(t, recs, open, nil)
	t.Logf("the same as a run that never stopped: from %s %v; without books %v", name, got, blind)
	var ended []string
	for _, d := range got.endedDiffer {
		f := strings.Fields(d)
		ended = append(ended, f[0]+" "+f[1])
	}
	for _, d := range differ {
		t.Log("differs: ", d)
	}
	require.Greater(t, got.endedSame, blind.endedSame, "the books change nothing")
	// A leg's file is written when it ends: a call still up when kanca is
	// back is not in the books, and what it did in the gap is the
	// adoption's to tell (logged above). Of the calls that ended in the
	// gap, only those listed may differ.
	slices.Sort(ended)
	require.Equal(t, jsonDiffer, ended, "the calls that ended in the gap and differ from a run that never stopped")
	return got, differ
}

// jsonDiffer are the calls that ended in the gap and, recovered from the
// mod_json_cdr files, still differ, by recording and kill: none now. The
// list may only stay so.
var jsonDiffer []string

// TestCallStillUpIsTheListsToTell: kanca killed before a call came in
// and back while its caller's leg is still up, 1000's leg (which took
// the call and transferred it to 1001) over: the books hold 1000's file
// alone. The call is told once, from the list, as the call to the
// number it came in on, not a second time from 1000's record as a call
// to 1000 that nobody answered; and 1000's leg, which names the caller's
// as its originator, is told as the step of that call it was, before
// the step to 1001 the list shows, at its own times.
func TestCallStillUpIsTheListsToTell(t *testing.T) {
	rec := loadRecording(t, "../testdata/esl/g02_blind_transfer_1000_to_1001", "esl")
	first, last := rec.ins[0].Time, rec.ins[len(rec.ins)-1].Time
	back := first.Add(last.Sub(first) / 2)
	got := interrupted(t, rec, jsonCDR(t, rec), first.Add(-time.Second), back)
	want := uninterrupted(t, rec.ins)
	require.Len(t, want, 1)
	for id := range want {
		var inits, steps []string
		for _, h := range got[id] {
			f := flatten(h.body)
			switch f["event_type"] {
			case `"call_init"`:
				inits = append(inits, f["callee"])
			case `"call_init_extension"`:
				steps = append(steps, f["destination"])
			}
			require.NotEqual(t, `"missing_call"`, f["event_type"], "the call was answered")
		}
		require.Equal(t, []string{"908508850000"}, inits)
		require.Equal(t, []string{"1000", "1001"}, steps, "the step to 1000 ended in the gap")
		require.Len(t, got[id], len(want[id]))
		w, g := flatten(want[id][len(want[id])-1].body), flatten(got[id][len(got[id])-1].body)
		for _, k := range []string{"cdr.answer_time", "cdr.callflow[1].callee", "cdr.callflow[1].answer_time", "cdr.callflow[1].hangup_time", "cdr.callflow[1].redirection_target", "cdr.callflow[2].start_time"} {
			require.Equal(t, w[k], g[k], k)
		}
	}
}

// TestPickedUpCallAdoptedAsTheInboundCallItIs: kanca killed before a
// call came in and back once 1001 had picked it up from 1000: FreeSWITCH
// lists the caller's leg with 1001 as its caller id (rewritten by the
// pickup), yet the call is the inbound call it is, delivered to the
// number it came in on, from its caller.
func TestPickedUpCallAdoptedAsTheInboundCallItIs(t *testing.T) {
	rec := loadRecording(t, "../testdata/esl/g03_pickup_1001_intercepts_call_ringing_1000", "esl")
	first, last := rec.ins[0].Time, rec.ins[len(rec.ins)-1].Time
	back := first.Add(last.Sub(first) / 2)
	for _, bk := range []books.Books{nil, jsonCDR(t, rec)} {
		got := interrupted(t, rec, bk, first.Add(-time.Second), back)
		want := uninterrupted(t, rec.ins)
		require.Len(t, want, 1)
		for id := range want {
			require.NotEmpty(t, got[id], "the call is delivered (books %v)", bk != nil)
			f := flatten(got[id][0].body)
			require.Equal(t, `"call_init"`, f["event_type"])
			require.Equal(t, "908508850004", f["callee"])
			require.Equal(t, "905321234567", f["caller"])
		}
	}
}

// TestAnswerTheGapHidIsPlacedWhenThePBXSaysIt: kanca killed while the
// caller rang 1000, back once voicemail had answered it. The list shows
// the caller's leg up; FreeSWITCH's uuid_dump says when it answered, and
// the call's answer is then, not where kanca last heard the PBX (without
// books too: the caller's file is written when the call ends).
func TestAnswerTheGapHidIsPlacedWhenThePBXSaysIt(t *testing.T) {
	rec := loadRecording(t, "../testdata/esl/g05_noanswer_10s_to_voicemail", "esl")
	want := uninterrupted(t, rec.ins)
	require.Len(t, want, 1)
	var answer time.Time
	for _, in := range rec.ins {
		if in.Kind == cdr.KindState && in.Channel.State == "Up" && answer.IsZero() {
			answer = in.Time
		}
	}
	require.False(t, answer.IsZero())
	end := rec.ins[len(rec.ins)-1].Time
	tried := 0
	for _, g := range gaps(rec.ins) {
		if !g[0].Before(answer) || g[1].Before(answer) || g[1].After(end) {
			continue // the answer was not in the gap, or the call not up after it
		}
		tried++
		for _, bk := range []books.Books{nil, jsonCDR(t, rec)} {
			got := interrupted(t, rec, bk, g[0], g[1])
			for id, hs := range want {
				w := flatten(hs[len(hs)-1].body)
				require.NotEmpty(t, got[id])
				f := flatten(got[id][len(got[id])-1].body)
				require.Equal(t, w["cdr.answer_time"], f["cdr.answer_time"], "killed at %s, back at %s (books %v)", g[0].Format("15:04:05.000"), g[1].Format("15:04:05.000"), bk != nil)
			}
		}
	}
	require.Positive(t, tried)
}

// TestQueueLeftInTheGapIsTheGroupStep: kanca killed before a call came
// in and back once mod_callcenter had bridged its caller to the agent
// that answered (1002; 1001 lost the race): the list shows the caller
// running uuid_bridge, no queue, and the books hold 1001's leg alone.
// The member's session keeps the queue it entered, so the call went to
// the queue, as a run that never stopped tells it, not to the agent
// whose leg ended first.
func TestQueueLeftInTheGapIsTheGroupStep(t *testing.T) {
	rec := loadRecording(t, "../testdata/esl/f07b_inbound_callcenter_queue_1002_answers", "esl")
	first, last := rec.ins[0].Time, rec.ins[len(rec.ins)-1].Time
	back := first.Add(last.Sub(first) / 2)
	want := uninterrupted(t, rec.ins)
	require.Len(t, want, 1)
	for _, bk := range []books.Books{nil, jsonCDR(t, rec)} {
		got := interrupted(t, rec, bk, first.Add(-time.Second), back)
		for id := range want {
			var steps []string
			for _, h := range got[id] {
				f := flatten(h.body)
				switch f["event_type"] {
				case `"call_init_group"`, `"call_init_extension"`:
					steps = append(steps, f["event_type"]+" "+f["destination"])
				}
			}
			require.Equal(t, []string{`"call_init_group" "support"`}, steps, "books %v", bk != nil)
			require.Len(t, got[id], len(want[id]))
			w, g := flatten(want[id][len(want[id])-1].body), flatten(got[id][len(got[id])-1].body)
			for _, k := range []string{"cdr.callflow[0].redirection", "cdr.callflow[1].callee", "cdr.callflow[1].start_time", "cdr.callflow[1].redirection_target", "cdr.callflow[2].callee"} {
				require.Equal(t, w[k], g[k], "%s (books %v)", k, bk != nil)
			}
		}
	}
}

// TestMoveInTheGapOfAFollowedCallIsPlacedWhenItHappened: kanca followed
// the call before the kill and came back after its caller moved on in
// the gap. The list shows where the caller is, and the PBX says when it
// got there (the session's caller profile) or the legs the move made
// say it: the step it opened begins then, and the step before it ends
// then, not when kanca was back or when the caller next moved.
func TestMoveInTheGapOfAFollowedCallIsPlacedWhenItHappened(t *testing.T) {
	for _, tc := range []struct {
		name       string
		kill, back float64 // of the recording's span
		keys       []string
	}{
		// 1000 took the call and sent it to the park (700): parked in
		// 701, then 1001 retrieved it, after kanca was back.
		{"g04_park_by_1000_retrieved_by_1001", 0.25, 0.5,
			[]string{"cdr.callflow[1].hangup_time", "cdr.callflow[1].redirection", "cdr.callflow[1].redirection_target", "cdr.callflow[2].callee", "cdr.callflow[2].start_time", "cdr.callflow[3].callee", "cdr.callflow[3].start_time"}},
		// 1000 did not answer; the caller was forwarded outside, and that
		// number answered two seconds later, all in the gap.
		{"g07_noanswer_forward_to_external", 0.5, 0.75,
			[]string{"cdr.callflow[1].hangup_time", "cdr.callflow[2].callee", "cdr.callflow[2].start_time", "cdr.callflow[2].answer_time"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := loadRecording(t, "../testdata/esl/"+tc.name, "esl")
			first, last := rec.ins[0].Time, rec.ins[len(rec.ins)-1].Time
			at := func(f float64) time.Time { return first.Add(time.Duration(f * float64(last.Sub(first)))) }
			want := uninterrupted(t, rec.ins)
			got := interrupted(t, rec, jsonCDR(t, rec), at(tc.kill), at(tc.back))
			require.Len(t, want, 1)
			for id := range want {
				require.Len(t, got[id], len(want[id]))
				w, g := flatten(want[id][len(want[id])-1].body), flatten(got[id][len(got[id])-1].body)
				for _, k := range tc.keys {
					require.NotEmpty(t, w[k], k)
					require.Equal(t, w[k], g[k], k)
				}
			}
		})
	}
}

// TestRestoredCallerWhereItWasIsNoMove: kanca killed while a ring
// group's caller talked to 1002, the member that answered, and back a
// moment before the call ended. The list shows the caller running the
// bridge it ran before the kill, though the last input kanca journaled
// of it (its answer) names no application: the restart is no move the
// gap hid, and the group is told once.
func TestRestoredCallerWhereItWasIsNoMove(t *testing.T) {
	rec := loadRecording(t, "../testdata/esl/f07_inbound_ringgroup_1002_answers", "esl")
	first, last := rec.ins[0].Time, rec.ins[len(rec.ins)-1].Time
	want := uninterrupted(t, rec.ins)
	require.Len(t, want, 1)
	for _, bk := range []books.Books{nil, jsonCDR(t, rec)} {
		got := interrupted(t, rec, bk, first.Add(last.Sub(first)/2), last.Add(-time.Millisecond))
		for id := range want {
			var groups int
			for _, h := range got[id] {
				if flatten(h.body)["event_type"] == `"call_init_group"` {
					groups++
				}
			}
			require.Equal(t, 1, groups, "books %v", bk != nil)
			require.Len(t, got[id], len(want[id]))
		}
	}
}
