package hooks

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/formats"
)

func TestEnqueueMatchesHooks(t *testing.T) {
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
		assert.Equal(t, Pending, d.State)
		assert.Equal(t, "c1", d.CallID)
	}
	assert.Len(t, got, 3)
	assert.Contains(t, seen, key{all.ID, "call_init"})
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

func TestEnqueueSavesCallRecord(t *testing.T) {
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

func TestEnqueueBadEventFailsOnlyItsCaller(t *testing.T) {
	s, _ := newStore(t)
	addHook(t, s, Hook{URL: "http://127.0.0.1:1/"})
	o := NewOutbox(s, OutboxOptions{})
	bad := event("bad", 1, cdr.CallHangup) // a hangup without its record cannot be encoded
	good := event("good", 1, cdr.CallInit)

	o.commitMu.Lock() // keep both callers in one group
	errs := make(chan error, 2)
	go func() { errs <- o.Enqueue(context.Background(), []cdr.Event{event("bad", 0, cdr.CallInit), bad}) }()
	go func() { errs <- o.Enqueue(context.Background(), []cdr.Event{good}) }()
	waitFor(t, "both callers in the group", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.open != nil && len(o.open.reqs) == 2
	})
	o.commitMu.Unlock()
	var failed int
	for range 2 {
		if err := <-errs; err != nil {
			failed++
			assert.ErrorContains(t, err, "call bad")
		}
	}
	assert.Equal(t, 1, failed)
	got := deliveries(t, s, Filter{})
	require.Len(t, got, 1, "the bad caller's first event is rolled back with it")
	assert.Equal(t, "good", got[0].CallID)
	assert.Equal(t, int64(1), o.Stats().Batches)
	assert.Equal(t, int64(1), o.Stats().Events)
}

func TestEnqueueGroupCommit(t *testing.T) {
	s, _ := newStore(t)
	addHook(t, s, Hook{URL: "http://127.0.0.1:1/"})
	o := NewOutbox(s, OutboxOptions{MaxBatch: 1000})
	const callers = 20

	o.commitMu.Lock() // a commit in progress: every caller gathers behind it
	var wg sync.WaitGroup
	returned := make(chan string, callers)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call := fmt.Sprintf("call-%d", i)
			assert.NoError(t, o.Enqueue(context.Background(), []cdr.Event{event(call, 1, cdr.CallInit)}))
			returned <- call
		}()
	}
	waitFor(t, "all callers in one group", func() bool {
		o.mu.Lock()
		defer o.mu.Unlock()
		return o.open != nil && len(o.open.reqs) == callers
	})
	assert.Empty(t, returned, "nobody returns before the commit")
	assert.Empty(t, deliveries(t, s, Filter{}))
	o.commitMu.Unlock()
	wg.Wait()
	close(returned)
	for call := range returned {
		assert.Len(t, deliveries(t, s, Filter{CallID: call}), 1, "committed when Enqueue returned")
	}
	assert.Equal(t, OutboxStats{Events: callers, Deliveries: callers, Batches: 1}, o.Stats())
}

func TestEnqueueBatchLimit(t *testing.T) {
	s, _ := newStore(t)
	addHook(t, s, Hook{URL: "http://127.0.0.1:1/"})
	o := NewOutbox(s, OutboxOptions{MaxBatch: 3})
	var evs []cdr.Event
	for i := range 7 {
		evs = append(evs, event("c", i+1, cdr.CallInit))
	}
	require.NoError(t, o.Enqueue(context.Background(), evs))
	assert.Len(t, deliveries(t, s, Filter{}), 7, "one caller's events are never split")
	assert.Equal(t, int64(1), o.Stats().Batches)
	assert.True(t, strings.HasPrefix(deliveries(t, s, Filter{})[0].ID[14:15], "7"), "UUIDv7")
}
