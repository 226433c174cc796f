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
