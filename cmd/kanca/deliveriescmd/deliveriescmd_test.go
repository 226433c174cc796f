package deliveriescmd

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cmd/kanca/termline/ptytest"
	"github.com/kanca/kanca/hooks"
)

func kanca(t *testing.T, db string, args ...string) (string, error) {
	t.Helper()
	cmd := New(&db)
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	if err == nil {
		// Off a terminal, progress lines would only clutter a log.
		assert.Empty(t, errb.String(), "kanca deliveries %s wrote to standard error", strings.Join(args, " "))
	}
	return out.String(), err
}

func ok(t *testing.T, db string, args ...string) string {
	t.Helper()
	out, err := kanca(t, db, args...)
	require.NoError(t, err, "kanca deliveries %s", strings.Join(args, " "))
	return out
}

// setup leaves two hooks: hook 1's receiver answers 500 and its deliveries
// are dead after one attempt; hook 2's are delivered.
func setup(t *testing.T) (db string, dead, delivered []hooks.Delivery) {
	t.Helper()
	ctx := context.Background()
	db = filepath.Join(t.TempDir(), "kanca.db")
	s, err := hooks.Open(db)
	require.NoError(t, err)
	defer s.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte("database is down\nsorry"))
	}))
	defer failing.Close()
	fine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer fine.Close()
	h1, err := s.AddHook(ctx, hooks.Hook{Number: "908508850000", URL: failing.URL})
	require.NoError(t, err)
	h2, err := s.AddHook(ctx, hooks.Hook{Number: "908508850000", URL: fine.URL})
	require.NoError(t, err)
	var evs []cdr.Event
	for _, call := range []string{"call-a", "call-b"} {
		evs = append(evs, cdr.Event{Type: cdr.CallInit, CallID: call, Seq: 1, Number: "908508850000",
			Caller: "905320000000", Callee: "908508850000", Direction: cdr.Inbound, Time: time.Now()})
	}
	errs, err := hooks.NewOutbox(s, hooks.OutboxOptions{}).Commit(ctx, []hooks.Unit{{Events: evs}})
	require.NoError(t, err)
	require.NoError(t, errs[0])

	runCtx, cancel := context.WithCancel(ctx)
	d := hooks.NewDispatcher(s, hooks.DispatchOptions{Retry: hooks.RetryPolicy{Initial: time.Second, Factor: 1, Attempts: 1}})
	done := make(chan error)
	go func() { done <- d.Run(runCtx) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		dead, _ = s.Deliveries(ctx, hooks.Filter{HookID: h1.ID, State: hooks.Dead})
		delivered, _ = s.Deliveries(ctx, hooks.Filter{HookID: h2.ID, State: hooks.Delivered})
		if len(dead) == 2 && len(delivered) == 2 {
			break
		}
		require.True(t, time.Now().Before(deadline), "gave up waiting for the deliveries to settle")
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	require.NoError(t, <-done)
	return db, dead, delivered
}

func TestListShowRetry(t *testing.T) {
	db, dead, delivered := setup(t)

	list := ok(t, db, "list")
	lines := strings.Split(strings.TrimSpace(list), "\n")
	require.Len(t, lines, 5)
	assert.Regexp(t, `^ID\s+HOOK\s+CALL\s+SEQ\s+EVENT\s+STATE\s+ATTEMPTS\s+NEXT\s+LAST$`, lines[0])

	out := ok(t, db, "list", "--state", "dead")
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 3)
	for _, d := range dead {
		assert.Regexp(t, d.ID+`\s+1\s+call-[ab]\s+1\s+call_init\s+dead\s+1\s+-\s+gave up after 1 attempts: HTTP 500`, out)
	}
	out = ok(t, db, "list", "--hook", "2", "--call", "call-b")
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2)
	assert.Contains(t, out, "delivered")
	assert.Contains(t, out, "call-b")
	out = ok(t, db, "list", "--limit", "1")
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 2)

	var listed []map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok(t, db, "list", "--json", "--state", "delivered")), &listed))
	require.Len(t, listed, 2)
	ids := []string{listed[0]["id"].(string), listed[1]["id"].(string)}
	assert.ElementsMatch(t, []string{delivered[0].ID, delivered[1].ID}, ids)

	show := ok(t, db, "show", dead[0].ID)
	assert.Regexp(t, `state:\s+dead`, show)
	assert.Contains(t, show, `{"event_type":"call_init"`, "the body")
	assert.Regexp(t, `AT\s+STATUS\s+LATENCY\s+ERROR\s+RESPONSE\n\S+\s+500\s+\S+\s+HTTP 500 Internal Server Error\s+database is down sorry`, show)

	var shown map[string]any
	require.NoError(t, json.Unmarshal([]byte(ok(t, db, "show", "--json", dead[0].ID)), &shown))
	assert.Equal(t, "dead", shown["state"])
	assert.Len(t, shown["attempt_log"], 1)

	assert.Equal(t, "requeued delivery "+dead[0].ID+"\n", ok(t, db, "retry", dead[0].ID))
	assert.Regexp(t, `state:\s+pending`, ok(t, db, "show", dead[0].ID))
	assert.Equal(t, "requeued 1 dead deliveries\n", ok(t, db, "retry", "--dead", "--hook", "1"))
	assert.Equal(t, "requeued 0 dead deliveries\n", ok(t, db, "retry", "--dead"))
	assert.Len(t, strings.Split(strings.TrimSpace(ok(t, db, "list", "--state", "pending")), "\n"), 3)
}

func TestBadInput(t *testing.T) {
	db, _, _ := setup(t)
	cases := []struct {
		db   string
		args []string
		err  string
	}{
		{db, []string{"list", "--state", "lost"}, `unknown state "lost"`},
		{db, []string{"list", "--state", "queued"}, `state "queued" is two: list pending (not tried yet) and retrying (tried, due again) one at a time`},
		{db, []string{"list", "--hook", "9"}, "hook 9: not found"},
		{db, []string{"list", "--limit", "-1"}, "must not be negative"},
		{db, []string{"show", "nope"}, `delivery "nope": not found`},
		{db, []string{"retry", "nope"}, `delivery "nope": not found`},
		{db, []string{"retry"}, "give a delivery ID, or --dead"},
		{db, []string{"retry", "x", "--dead"}, "not both"},
		{db, []string{"retry", "x", "--hook", "1"}, "--hook goes with --dead"},
		{db, []string{"retry", "--dead", "--hook", "9"}, "hook 9: not found"},
		{filepath.Join(t.TempDir(), "none.db"), []string{"list"}, "database does not exist"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			_, err := kanca(t, c.db, c.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.err)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
	for _, sub := range []string{"list", "show", "retry"} {
		assert.Contains(t, ok(t, db, sub, "--help"), "Examples:", sub)
	}
}

func TestRetryDeadShowsProgressOnATerminal(t *testing.T) {
	db, _, _ := setup(t)
	tty, screen := ptytest.Open(t)
	cmd := New(&db)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(tty)
	cmd.SetArgs([]string{"retry", "--dead"})
	require.NoError(t, cmd.Execute())
	assert.Equal(t, "requeued 2 dead deliveries\n", out.String())
	const progress = "requeued 2 of 2 dead deliveries"
	assert.Equal(t, "\r"+progress+"\r"+strings.Repeat(" ", len(progress))+"\r", screen(),
		"progress, then a blank line for what follows")
}

// A delivery waiting behind an earlier event of its call says so instead
// of showing a due time that has passed; retrying one of a disabled hook
// says that it waits for the hook.
func TestWaitingDeliveriesSayWhatTheyWaitFor(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "kanca.db")
	s, err := hooks.Open(db)
	require.NoError(t, err)
	h, err := s.AddHook(ctx, hooks.Hook{Number: "908508850000", URL: "http://127.0.0.1:1/"})
	require.NoError(t, err)
	var evs []cdr.Event
	for i, typ := range []cdr.EventType{cdr.CallInit, cdr.CallInitExtension} {
		evs = append(evs, cdr.Event{Type: typ, CallID: "call-a", Seq: i + 1, Number: "908508850000",
			Caller: "905320000000", Callee: "908508850000", Direction: cdr.Inbound, Time: time.Now(), Destination: "101"})
	}
	errs, err := hooks.NewOutbox(s, hooks.OutboxOptions{}).Commit(ctx, []hooks.Unit{{Events: evs}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	first, err := s.Deliveries(ctx, hooks.Filter{})
	require.NoError(t, err)
	require.NoError(t, s.SetEnabled(ctx, h.ID, false))
	require.NoError(t, s.Close())

	out := ok(t, db, "list")
	assert.Regexp(t, `call-a\s+2\s+call_init_extension\s+pending\s+0\s+after seq 1\s`, out)
	assert.Regexp(t, `call-a\s+1\s+call_init\s+pending\s+0\s+20\d\d-`, out)
	// show says the same of the one waiting behind its call's first.
	for _, d := range first {
		want := `next attempt:\s+20\d\d-`
		if d.Seq == 2 {
			want = `next attempt:\s+after seq 1 of its call is delivered\n`
		}
		assert.Regexp(t, want, ok(t, db, "show", d.ID), "seq %d", d.Seq)
	}

	// The hook is disabled now: a new call's event is held for it.
	s, err = hooks.Open(db)
	require.NoError(t, err)
	evs[0].CallID = "call-b"
	errs, err = hooks.NewOutbox(s, hooks.OutboxOptions{}).Commit(ctx, []hooks.Unit{{Events: evs[:1]}})
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.NoError(t, s.Close())
	assert.Regexp(t, `call-b\s+1\s+call_init\s+held\s+0\s+on enable\s`, ok(t, db, "list", "--state", "held"))

	id := first[len(first)-1].ID
	assert.Equal(t, "delivery "+id+" waits for hook 1 to be enabled: kanca hooks enable 1\n", ok(t, db, "retry", id))

	raw, err := sql.Open("sqlite3", db)
	require.NoError(t, err)
	_, err = raw.ExecContext(ctx, "UPDATE outbox SET state = 'dead'")
	require.NoError(t, err)
	require.NoError(t, raw.Close())
	assert.Equal(t, "requeued 3 dead deliveries\nthey wait for hook 1 to be enabled: kanca hooks enable 1\n", ok(t, db, "retry", "--dead", "--hook", "1"))
}
