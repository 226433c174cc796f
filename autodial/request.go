package autodial

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Request is one ask for calls, whichever endpoint took it, normalised.
// Its JSON form is kanca's own API and what the store keeps.
type Request struct {
	Title   string   `json:"title,omitempty"`
	Numbers []string `json:"numbers"`          // international digits, in calling order
	From    string   `json:"from,omitempty"`   // the PBX number calling; the key's first when ""
	Text    string   `json:"text,omitempty"`   // read aloud
	Voice   string   `json:"voice,omitempty"`  // the speech engine's voice (tr, en)
	Sound   string   `json:"sound,omitempty"`  // media the PBX plays instead of Text: a URL or a PBX sound name
	Repeat  int      `json:"repeat,omitempty"` // times the message is played (default 1)
	// Gather asks the called person to press a key to acknowledge.
	Gather bool `json:"gather,omitempty"`
	// Escalate calls the numbers one after another until one
	// acknowledges (with Gather) or answers.
	Escalate bool `json:"escalate,omitempty"`
	Retries  int  `json:"retries,omitempty"`     // more tries after busy or no answer
	Delay    int  `json:"retry_delay,omitempty"` // seconds between tries (default 60)
	Timeout  int  `json:"timeout,omitempty"`     // seconds of ringing (default 30, at most 60)
	// Destination connects the answered call to a menu, group or
	// extension (click-to-call) instead of playing a message.
	Destination    string  `json:"destination,omitempty"`
	AdditionalData *string `json:"additional_data,omitempty"`
	CallbackURL    *string `json:"callback_url,omitempty"`
	Window         *Window `json:"window,omitempty"`
}

// Limits of a request.
const (
	MaxNumbers = 50
	MaxRepeat  = 5
	MaxRetries = 5
	MaxTimeout = 60
)

// FieldError names the request field that is wrong.
type FieldError struct {
	Field, Msg string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, a ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// ErrBudget is returned when a key's calls for the day are spent.
var ErrBudget = errors.New("no calls left in this key's daily budget")

// Normalize fills defaults and checks r against the key's rules. Numbers
// must already be international digits (see Numbers.Parse); premium are
// the premium-rate prefixes in force.
func (r *Request) Normalize(k Key, premium []string) error {
	if len(r.Numbers) == 0 {
		return fieldErr("numbers", "no number to call")
	}
	if len(r.Numbers) > MaxNumbers {
		return fieldErr("numbers", "%d numbers, at most %d", len(r.Numbers), MaxNumbers)
	}
	for _, n := range r.Numbers {
		if err := k.mayCall(n, premium); err != nil {
			return fieldErr("numbers", "%s", err)
		}
	}
	if r.From == "" {
		r.From = k.From[0]
	} else if !contains(k.From, r.From) {
		return fieldErr("from", "this key may not call from %s (allowed: %s)", r.From, strings.Join(k.From, ", "))
	}
	if r.Destination == "" && r.Text == "" && r.Sound == "" {
		return fieldErr("text", "give a text to read or a sound to play")
	}
	if len([]rune(r.Text)) > 500 {
		return fieldErr("text", "%d characters, at most 500", len([]rune(r.Text)))
	}
	if r.Repeat == 0 {
		r.Repeat = 1
	}
	if r.Repeat < 0 || r.Repeat > MaxRepeat {
		return fieldErr("repeat", "want 1 to %d", MaxRepeat)
	}
	if r.Retries < 0 || r.Retries > MaxRetries {
		return fieldErr("retries", "want 0 to %d", MaxRetries)
	}
	if r.Delay == 0 {
		r.Delay = 60
	}
	if r.Delay < 0 || r.Delay > 3600 {
		return fieldErr("retry_delay", "want 1 to 3600 seconds")
	}
	if r.Timeout == 0 {
		r.Timeout = 30
	}
	if r.Timeout < 0 || r.Timeout > MaxTimeout {
		return fieldErr("timeout", "want 0 to %d seconds", MaxTimeout)
	}
	if r.Window != nil {
		if err := r.Window.check(); err != nil {
			return err
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Taken is a request the store accepted.
type Taken struct {
	ID    int64
	Calls int
}

// Enqueue stores r (already normalised) for key k, with its calls, in one
// transaction: once it returns, the calls are placed even if kanca is
// killed the next instant. It fails with ErrBudget, storing nothing, when
// the key's budget for day (a date in kanca's zone) cannot pay for them.
func (s *Store) Enqueue(ctx context.Context, k Key, kind, remote string, r Request, now time.Time, day string) (Taken, error) {
	spec, err := json.Marshal(r)
	if err != nil {
		return Taken{}, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Taken{}, fmt.Errorf("enqueue: %w", err)
	}
	defer tx.Rollback()
	var spent int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM calls JOIN requests r ON r.id = calls.request_id
		WHERE r.key_name = ? AND r.day = ?`, k.Name, day).Scan(&spent); err != nil {
		return Taken{}, fmt.Errorf("enqueue: budget: %w", err)
	}
	if spent+len(r.Numbers) > k.DailyBudget {
		return Taken{}, fmt.Errorf("%w (%d of %d used today, %d asked)", ErrBudget, spent, k.DailyBudget, len(r.Numbers))
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO requests (key_name, kind, remote, created, day, spec) VALUES (?, ?, ?, ?, ?, ?)`,
		k.Name, kind, remote, now.UTC().Format(time.RFC3339Nano), day, string(spec))
	if err != nil {
		return Taken{}, fmt.Errorf("enqueue: %w", err)
	}
	id, _ := res.LastInsertId()
	for i, n := range r.Numbers {
		state := stateQueued
		if r.Escalate && i > 0 {
			state = stateWaiting
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO calls (request_id, seq, number, state, updated) VALUES (?, ?, ?, ?, ?)`,
			id, i, n, state, now.UTC().Format(time.RFC3339Nano)); err != nil {
			return Taken{}, fmt.Errorf("enqueue: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return Taken{}, fmt.Errorf("enqueue: %w", err)
	}
	return Taken{ID: id, Calls: len(r.Numbers)}, nil
}

// Call states. waiting: an escalation's later number, not yet due;
// queued: due at next_at; dialing: handed to the PBX. The rest are final.
const (
	stateWaiting     = "waiting"
	stateQueued      = "queued"
	stateDialing     = "dialing"
	StateAnswered    = "answered"    // answered (and, when asked, no key or not needed)
	StateAcked       = "acked"       // the called person pressed a key
	StateUnanswered  = "unanswered"  // busy or no answer after every try
	StateFailed      = "failed"      // the PBX refused the call
	StateSkipped     = "skipped"     // an earlier number acknowledged
	StateInterrupted = "interrupted" // kanca stopped while the call was up: not placed again
)

// CallResult is one recipient's line in a request's results.
type CallResult struct {
	ID        int64  `json:"id"`
	Number    string `json:"number"`
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	HasCalled bool   `json:"has_called"`
	Answer    bool   `json:"answer"`
	Gather    string `json:"gather"`
	Outcome   string `json:"outcome,omitempty"`
	Channel   string `json:"channel,omitempty"`
}

// RequestView is a request with its calls: the audit trail.
type RequestView struct {
	ID      int64        `json:"id"`
	Key     string       `json:"key"`
	Kind    string       `json:"kind"`
	Remote  string       `json:"remote"`
	Created time.Time    `json:"created"`
	Request Request      `json:"request"`
	Calls   []CallResult `json:"calls"`
}

// Requests lists requests newest first (key "" for all keys, id 0 for
// all ids), with their calls.
func (s *Store) Requests(ctx context.Context, key string, id int64, limit int) ([]RequestView, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, key_name, kind, remote, created, spec FROM requests
		WHERE (? = '' OR key_name = ?) AND (? = 0 OR id = ?) ORDER BY id DESC LIMIT ?`, key, key, id, id, limit)
	if err != nil {
		return nil, fmt.Errorf("list requests: %w", err)
	}
	var out []RequestView
	for rows.Next() {
		var v RequestView
		var created, spec string
		if err := rows.Scan(&v.ID, &v.Key, &v.Kind, &v.Remote, &created, &spec); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list requests: %w", err)
		}
		v.Created, _ = time.Parse(time.RFC3339Nano, created)
		_ = json.Unmarshal([]byte(spec), &v.Request)
		out = append(out, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Calls, err = s.calls(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Request is one request with its calls.
func (s *Store) Request(ctx context.Context, key string, id int64) (RequestView, error) {
	vs, err := s.Requests(ctx, key, id, 1)
	if err != nil {
		return RequestView{}, err
	}
	if len(vs) == 0 {
		return RequestView{}, ErrNotFound
	}
	return vs[0], nil
}

func (s *Store) calls(ctx context.Context, req int64) ([]CallResult, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, number, state, attempts, answered, digit, outcome, channel
		FROM calls WHERE request_id = ? ORDER BY seq`, req)
	if err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	defer rows.Close()
	out := []CallResult{}
	for rows.Next() {
		var c CallResult
		if err := rows.Scan(&c.ID, &c.Number, &c.State, &c.Attempts, &c.Answer, &c.Gather, &c.Outcome, &c.Channel); err != nil {
			return nil, err
		}
		c.HasCalled = c.Attempts > 0
		out = append(out, c)
	}
	return out, rows.Err()
}
