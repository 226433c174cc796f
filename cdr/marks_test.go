package cdr

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A call whose inputs came partly from the PBX's books says it was
// recovered; one whose end nobody saw names the fields it estimates.
func TestRecordSaysHowKancaLearnedTheEnd(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	caller := Channel{ID: "1.0", Name: "PJSIP/trunk-1", State: "Ring", CallerNumber: "05321234567", Context: "from-trunk", Exten: "908508850000"}
	for _, tc := range []struct {
		name      string
		end       Input
		recovered bool
		estimated []string
	}{
		{"live", Input{Kind: KindDestroyed, Cause: 16}, false, nil},
		{"books", Input{Kind: KindDestroyed, Cause: 16, Books: true}, true, nil},
		{"books that say what they estimate", Input{Kind: KindDestroyed, Cause: 16, Books: true, Estimated: []string{"call_record"}}, true, []string{"call_record"}},
		{"gone", Input{Kind: KindGone}, false, []string{"hangup_time", "talk_duration", "hangup_cause", "sip_hangup_disposition"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(DefaultConfig())
			tr.Handle(Input{Kind: KindCreated, Time: t0, Channel: caller})
			end := tc.end
			end.Time, end.Channel = t0.Add(5*time.Second), caller
			var rec *Record
			for _, ev := range tr.Handle(end) {
				if ev.Type == CallHangup {
					rec = ev.CDR
				}
			}
			require.NotNil(t, rec)
			assert.Equal(t, tc.recovered, rec.Recovered)
			assert.Equal(t, tc.end.Kind == KindGone, rec.Reconciled)
			assert.Equal(t, tc.estimated, rec.Estimated)
		})
	}
}

// A call whose caller's leg crossed a gap (the books told it through one,
// or its first event since says it lived through one: Resumed) and that
// then ends live with no hangup request heard: the request was in the
// gap (and after the books, if they were read), so who hung up, and the
// cause inferred from it, are named estimates. Heard, or stated by the
// PBX (FreeSWITCH's disposition), or with no gap, nothing is.
func TestLiveEndAfterAGapWithoutRequestEstimatesTheSide(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	caller := Channel{ID: "1.0", Name: "PJSIP/trunk-1", State: "Ring", CallerNumber: "05321234567", Context: "from-trunk", Exten: "908508850000"}
	up := caller
	up.State = "Up"
	books := Input{Kind: KindState, Time: t0.Add(time.Second), Channel: up, Books: true}
	resumed := Input{Kind: KindVar, Time: t0.Add(time.Second), Channel: caller, Var: "X", Value: "1", Resumed: true}
	heard := Input{Kind: KindVar, Time: t0.Add(time.Second), Channel: caller, Var: "X", Value: "1"}
	side := []string{"sip_hangup_disposition", "hangup_cause"}
	for _, tc := range []struct {
		name        string
		gap         Input
		request     bool
		disposition string
		estimated   []string
	}{
		{"books, request unseen", books, false, "", side},
		{"books, request seen", books, true, "", nil},
		{"lived through, request unseen", resumed, false, "", side},
		{"lived through, request seen", resumed, true, "", nil},
		{"lived through, the PBX states the disposition", resumed, false, "recv_cancel", nil},
		{"no gap", heard, false, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTracker(DefaultConfig())
			tr.Handle(Input{Kind: KindCreated, Time: t0, Channel: caller})
			tr.Handle(tc.gap)
			if tc.request {
				tr.Handle(Input{Kind: KindHangupRequest, Time: t0.Add(5 * time.Second), Channel: tc.gap.Channel, Cause: 16})
			}
			var rec *Record
			for _, ev := range tr.Handle(Input{Kind: KindDestroyed, Time: t0.Add(5 * time.Second), Channel: tc.gap.Channel, Cause: 127, Disposition: tc.disposition}) {
				if ev.Type == CallHangup {
					rec = ev.CDR
				}
			}
			require.NotNil(t, rec)
			assert.Equal(t, tc.gap.Books, rec.Recovered)
			assert.Equal(t, tc.estimated, rec.Estimated)
		})
	}
}
