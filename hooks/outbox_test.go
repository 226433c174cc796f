package hooks

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

func TestCommitMatchesHooks(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	all := addHook(t, s, Hook{URL: "http://127.0.0.1:1/all"})
	dom := int64(42)
	alias := addHook(t, s, Hook{URL: "http://127.0.0.1:1/alias", Format: formats.Form,
		Events: []string{"incoming_call_extension"}, DomainID: &dom})
	off := addHook(t, s, Hook{URL: "http://127.0.0.1:1/off"})
	require.NoError(t, s.SetEnabled(ctx, off.ID, false))
	addHook(t, s, Hook{Number: "908508850001", URL: "http://127.0.0.1:1/other"})

	enqueue(t, s, event("c1", 1, cdr.CallInit), event("c1", 2, cdr.CallInitExtension))

	got := deliveries(t, s, Filter{})
	type key struct {
		hook  int64
		event string
	}
	seen := map[key]Delivery{}
	for _, d := range got {
		seen[key{d.HookID, d.Event}] = d
		if d.HookID != off.ID {
			assert.Equal(t, Pending, d.State)
		}
		assert.Equal(t, "c1", d.CallID)
	}
	assert.Len(t, got, 5)
	assert.Contains(t, seen, key{all.ID, "call_init"})
	// A disabled hook's events are held for it, not dropped.
	assert.Equal(t, Held, seen[key{off.ID, "call_init"}].State)
	assert.Equal(t, Held, seen[key{off.ID, "call_init_extension"}].State)
	assert.Contains(t, seen, key{all.ID, "call_init_extension"})
	d, ok := seen[key{alias.ID, "incoming_call_extension"}]
	require.True(t, ok, "the alias hook gets its own spelling")
	assert.Equal(t, 2, d.Seq)
	assert.Equal(t, "application/x-www-form-urlencoded", d.ContentType)
	assert.Contains(t, string(d.Body), "event_type=incoming_call_extension")
	assert.Contains(t, string(d.Body), "domain_id=42")
	assert.Equal(t, "application/json", seen[key{all.ID, "call_init"}].ContentType)
	assert.Contains(t, string(seen[key{all.ID, "call_init"}].Body), `"event_type":"call_init"`)
	ids := map[string]bool{}
	for _, d := range got {
		assert.False(t, ids[d.ID], "delivery ids are unique")
		ids[d.ID] = true
	}
}

func TestCommitSavesCallRecord(t *testing.T) {
	s, _ := newStore(t)
	ev := SampleEvent(cdr.CallHangup, pbx, time.Date(2025, 7, 1, 18, 0, 55, 0, time.UTC))
	enqueue(t, s, ev) // no hook: the call is kept all the same
	var number, cause string
	var body []byte
	err := s.db.QueryRow("SELECT number, hangup_cause, hangup_json FROM calls WHERE uuid = ?", ev.CallID).Scan(&number, &cause, &body)
	require.NoError(t, err)
	assert.Equal(t, pbx, number)
	assert.Equal(t, "NORMAL_CLEARING", cause)
	assert.Contains(t, string(body), `"event_type":"call_hangup"`)
	assert.Contains(t, string(body), ev.CallID)
	assert.Empty(t, deliveries(t, s, Filter{}))
}

// EndedSince names the calls stored as ended at or after a time: after
// a gap, which calls the PBX's books hold were already told.
func TestEndedSinceNamesTheCallsStored(t *testing.T) {
	s, _ := newStore(t)
	end := time.Date(2025, 7, 1, 18, 0, 55, 0, time.UTC)
	ev := SampleEvent(cdr.CallHangup, pbx, end)
	enqueue(t, s, ev)
	got, err := s.EndedSince(context.Background(), end)
	require.NoError(t, err)
	assert.Equal(t, map[string]bool{ev.CallID: true}, got)
	got, err = s.EndedSince(context.Background(), end.Add(time.Millisecond))
	require.NoError(t, err)
	assert.Empty(t, got)
}

func TestCommitBadEventFailsOnlyItsUnit(t *testing.T) {
	s, _ := newStore(t)
	addHook(t, s, Hook{URL: "http://127.0.0.1:1/"})
	o := NewOutbox(s, OutboxOptions{})
	bad := event("bad", 1, cdr.CallHangup) // a hangup without its record cannot be encoded
	good := event("good", 1, cdr.CallInit)
	in := cdr.Input{Kind: cdr.KindCreated, Channel: cdr.Channel{ID: "chan-bad"}}

	errs, err := o.Commit(context.Background(), []Unit{
		{Events: []cdr.Event{event("bad", 0, cdr.CallInit), bad}, Input: &in},
		{Events: []cdr.Event{good}},
	})
	require.NoError(t, err)
	assert.ErrorContains(t, errs[0], "call bad")
	assert.NoError(t, errs[1])
	got := deliveries(t, s, Filter{})
	require.Len(t, got, 1, "the bad unit's first event is rolled back with it")
	assert.Equal(t, "good", got[0].CallID)
	ins, _, err := s.Journal(context.Background())
	require.NoError(t, err)
	require.Len(t, ins, 1, "the journal moves on: the tracker took the input")
	assert.Equal(t, "chan-bad", ins[0].Channel.ID)
	assert.Equal(t, OutboxStats{Events: 1, Deliveries: 1, Batches: 1}, o.Stats())
}

func TestCommitKeepsAUnitWhole(t *testing.T) {
	s, _ := newStore(t)
	addHook(t, s, Hook{URL: "http://127.0.0.1:1/"})
	o := NewOutbox(s, OutboxOptions{})
	var evs []cdr.Event
	for i := range 7 {
		evs = append(evs, event("c", i+1, cdr.CallInit))
	}
	commit(t, o, evs...)
	got := deliveries(t, s, Filter{})
	assert.Len(t, got, 7)
	assert.Equal(t, int64(1), o.Stats().Batches)
	assert.True(t, strings.HasPrefix(got[0].ID[14:15], "7"), "UUIDv7")
}
