package autodial

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/kanca/kanca/cdr"
)

// Placement is one call attempt as the PBX is asked to place it.
type Placement struct {
	Channel  string        // the channel id kanca chose, known to the tracker beforehand
	Dial     string        // the number as the trunk dials it
	Endpoint string        // the trunk's template with Dial filled in
	CallerID string        // the PBX number calling
	Timeout  time.Duration // of ringing
	// Destination, when set, is where the PBX connects the answered call
	// (click-to-call); kanca then plays nothing.
	Destination string
}

// Dialer places calls on a PBX and commands them. ARIDialer and
// ESLDialer are the two.
type Dialer interface {
	// Originate asks the PBX for the call. An error wrapping ErrNotAsked
	// says the request never reached the PBX (kanca is not connected to
	// it yet): the call is tried again shortly, the try not counted.
	Originate(ctx context.Context, p Placement) error
	// Play plays media (a URL or a PBX sound name) on the channel.
	Play(ctx context.Context, channel, media string) error
	Hangup(ctx context.Context, channel string) error
}

// ErrNotAsked marks a placement that never reached the PBX.
var ErrNotAsked = errors.New("the PBX was not asked")

// Speaker turns a request's text into media the PBX plays and says how
// long it lasts.
type Speaker func(ctx context.Context, text, voice string) (media string, d time.Duration, err error)

// Runner places the stored calls. Observe must see every PBX input (the
// pipeline's observer), and Announce tells the tracker of a channel
// before the PBX is asked for it (the pipeline's Inject).
type Runner struct {
	Store    *Store
	Dialer   Dialer
	Announce func(cdr.Input) error
	Speak    Speaker
	Numbers  Numbers
	Location *time.Location // calling windows' zone (--tz); default time.Local
	// Trunks carry the calls (see CheckTrunks); at least one.
	Trunks []Trunk
	// Concurrency bounds calls up at once on each trunk, kanca's share
	// of its channels (default 4).
	Concurrency int
	// Poll is how often due calls are looked for (default 1 s); a new
	// request wakes the runner at once.
	Poll time.Duration
	// GatherWait is how long after the message a key press is awaited
	// (default 5 s).
	GatherWait time.Duration
	// SoundWait is how long a call playing media of unknown length stays
	// up (default 60 s) when the PBX does not say it ended (cdr.KindPlayed).
	SoundWait time.Duration
	Logger    *slog.Logger
	Now       func() time.Time

	mu      sync.Mutex
	watches map[string]chan cdr.Input
	active  map[string]int // calls up, by trunk name
	wake    chan struct{}
	wg      sync.WaitGroup
	seq     int64
}

func (r *Runner) init() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watches == nil {
		r.watches = map[string]chan cdr.Input{}
		r.active = map[string]int{}
		r.wake = make(chan struct{}, 1)
	}
	if r.Concurrency <= 0 {
		r.Concurrency = 4
	}
	if r.Poll <= 0 {
		r.Poll = time.Second
	}
	if r.GatherWait <= 0 {
		r.GatherWait = 5 * time.Second
	}
	if r.SoundWait <= 0 {
		r.SoundWait = time.Minute
	}
	if r.Location == nil {
		r.Location = time.Local
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.Now == nil {
		r.Now = time.Now
	}
}

// Wake makes the runner look for due calls now (a request was stored).
func (r *Runner) Wake() {
	r.init()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Observe takes one PBX input; the runner keeps those of its own calls.
// It never blocks the PBX stream.
func (r *Runner) Observe(in cdr.Input) {
	r.mu.Lock()
	ch := r.watches[in.Channel.ID]
	r.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- in:
	default:
		r.Logger.Warn("autodial: dropped a PBX event of a placed call", "channel", in.Channel.ID, "kind", in.Kind)
	}
}

// Run places due calls until ctx ends, then waits for the calls up.
// Calls kanca was placing when it last stopped are not placed again: the
// PBX may have rung the person already.
func (r *Runner) Run(ctx context.Context) error {
	r.init()
	if err := CheckTrunks(r.Trunks); err != nil {
		return fmt.Errorf("autodial: trunks: %w", err)
	}
	if err := r.Store.interrupted(ctx, r.Now()); err != nil {
		return err
	}
	t := time.NewTicker(r.Poll)
	defer t.Stop()
	defer r.wg.Wait()
	for {
		if err := r.dispatch(ctx); err != nil && ctx.Err() == nil {
			r.Logger.Error("autodial: reading due calls", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.wake:
		}
	}
}

type job struct {
	id, request int64
	number      string
	attempts    int
	req         Request
}

func (r *Runner) dispatch(ctx context.Context) error {
	// What each trunk has free now; calls ending meanwhile only free
	// more, seen at the next look.
	free := map[string]int{}
	r.mu.Lock()
	for _, t := range r.Trunks {
		free[t.Name()] = r.Concurrency - r.active[t.Name()]
	}
	r.mu.Unlock()
	open := 0
	for _, n := range free {
		open += max(n, 0)
	}
	if open == 0 {
		return nil
	}
	now := r.Now()
	admit := func(number string) (Trunk, bool) {
		t := route(r.Trunks, number)
		if free[t.Name()] <= 0 {
			return t, false
		}
		free[t.Name()]--
		return t, true
	}
	jobs, err := r.Store.claim(ctx, now, admit, r.Location, func(id int64) string {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.seq++
		return "kanca-ad-" + strconv.FormatInt(id, 10) + "-" + strconv.FormatInt(now.UnixNano(), 36) + "-" + strconv.FormatInt(r.seq, 10)
	})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		trunk := j.trunk.Name()
		r.mu.Lock()
		r.active[trunk]++
		r.mu.Unlock()
		r.wg.Add(1)
		go func(j claimed) {
			defer r.wg.Done()
			res := r.place(ctx, j)
			if ctx.Err() != nil && res.state == "" {
				// Stopping mid-call: the call stays "dialing" and the
				// next start marks it interrupted.
			} else if err := r.Store.finish(context.WithoutCancel(ctx), j, res, r.Now()); err != nil {
				r.Logger.Error("autodial: recording a call's result", "call", j.id, "err", err)
			}
			r.mu.Lock()
			r.active[trunk]--
			r.mu.Unlock()
			r.Wake()
		}(j)
	}
	return nil
}

// result is how one attempt ended.
type result struct {
	state    string // a final state, or stateQueued to try again; "" unknown (stopping)
	answered bool
	digit    string
	outcome  string
	requeue  bool // the PBX was not asked: the try does not count
}

func (r *Runner) watch(channel string) chan cdr.Input {
	ch := make(chan cdr.Input, 256)
	r.mu.Lock()
	r.watches[channel] = ch
	r.mu.Unlock()
	return ch
}

func (r *Runner) unwatch(channel string) {
	r.mu.Lock()
	delete(r.watches, channel)
	r.mu.Unlock()
}

func (r *Runner) place(ctx context.Context, j claimed) result {
	log := r.Logger.With("call", j.id, "request", j.request, "number", j.number, "channel", j.channel)
	req := j.req
	var media string
	var length time.Duration
	switch {
	case req.Destination != "":
	case req.Sound != "":
		media, length = req.Sound, r.SoundWait
	default:
		var err error
		media, length, err = r.Speak(ctx, req.Text, req.Voice)
		if err != nil {
			log.Error("autodial: speech failed; the call is not placed", "err", err)
			return result{state: StateFailed, outcome: "speech: " + err.Error()}
		}
	}
	events := r.watch(j.channel)
	defer r.unwatch(j.channel)
	at := r.Now()
	if err := r.Announce(cdr.Input{Kind: cdr.KindOriginate, Time: at, Channel: cdr.Channel{ID: j.channel},
		Origin: &cdr.Origin{Number: "+" + req.From, Callee: "+" + j.number, AdditionalData: req.AdditionalData, CallbackURL: req.CallbackURL}}); err != nil {
		// Not asked of the PBX (kanca is starting or stopping): try
		// again shortly, without counting a try.
		return result{state: stateQueued, requeue: true, outcome: "not placed yet: " + err.Error()}
	}
	dial := r.Numbers.Dial(j.number)
	p := Placement{Channel: j.channel, Dial: dial, Endpoint: j.trunk.Endpoint(dial), CallerID: req.From,
		Timeout: time.Duration(req.Timeout) * time.Second, Destination: req.Destination}
	if err := r.Dialer.Originate(ctx, p); errors.Is(err, ErrNotAsked) {
		// The channel announced never appears: the tracker forgets it.
		log.Warn("autodial: the PBX was not asked; trying again shortly", "err", err)
		return result{state: stateQueued, requeue: true, outcome: "not placed yet: " + err.Error()}
	} else if err != nil {
		log.Error("autodial: the PBX refused the call", "err", err)
		return result{state: StateFailed, outcome: "originate: " + err.Error()}
	}
	log.Info("autodial: call placed")
	// Ringing ends at the PBX's timeout; the guard covers a PBX that
	// never says.
	guard := time.NewTimer(p.Timeout + 30*time.Second)
	defer guard.Stop()
	var done <-chan time.Time
	var res result
	played := 0 // sounds the PBX said it finished
	// after is how long the call stays up once the message is over: a
	// moment, and the time for a key press when one is asked for.
	after := time.Second
	if req.Gather {
		after += r.GatherWait
	}
	hangup := func(why string) {
		if err := r.Dialer.Hangup(context.WithoutCancel(ctx), j.channel); err != nil {
			log.Warn("autodial: hang up", "why", why, "err", err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return result{}
		case <-guard.C:
			hangup("no end in sight")
			if !res.answered {
				return r.unanswered(j, "the PBX never said how the call ended")
			}
			return r.answeredResult(res)
		case <-done:
			done = nil
			hangup("message over")
		case in := <-events:
			switch in.Kind {
			case cdr.KindState:
				if in.Channel.State != "Up" || res.answered {
					continue
				}
				res.answered = true
				if req.Destination != "" {
					// Connected to a person: the call lasts as long as
					// they talk, and kanca only waits for its end.
					guard.Stop()
					continue
				}
				guard.Reset(10 * time.Minute)
				for i := 0; i < req.Repeat; i++ {
					if err := r.Dialer.Play(ctx, j.channel, media); err != nil {
						log.Warn("autodial: play", "err", err)
					}
				}
				done = time.After(length*time.Duration(req.Repeat) + after)
			case cdr.KindPlayed:
				// The PBX says when a sound ended: a sound of unknown
				// length (a PBX recording, a URL) need not hold the line
				// for SoundWait.
				if !res.answered || media == "" {
					continue
				}
				if played++; played == req.Repeat {
					done = time.After(after)
				}
			case cdr.KindDTMF:
				if res.answered && res.digit == "" {
					res.digit = in.Digit
					if req.Gather {
						hangup("acknowledged")
					}
				}
			case cdr.KindDestroyed, cdr.KindGone:
				if res.answered {
					return r.answeredResult(res)
				}
				why := "no answer"
				if in.Cause == 17 {
					why = "busy"
				} else if in.Cause != 0 && in.Cause != 19 && in.Cause != 18 && in.Cause != 16 {
					why = "not reached: " + cdr.CauseName(in.Cause)
				}
				return r.unanswered(j, why)
			}
		}
	}
}

func (r *Runner) answeredResult(res result) result {
	res.state, res.outcome = StateAnswered, "answered"
	if res.digit != "" {
		res.state, res.outcome = StateAcked, "answered, pressed "+res.digit
	}
	return res
}

// unanswered tries again after the request's delay while tries are left.
func (r *Runner) unanswered(j claimed, why string) result {
	if j.attempts <= j.req.Retries {
		return result{state: stateQueued, outcome: why + "; trying again"}
	}
	return result{state: StateUnanswered, outcome: why}
}

// succeeded says whether a final call ends an escalation.
func succeeded(req Request, state string) bool {
	if req.Gather {
		return state == StateAcked
	}
	return state == StateAnswered || state == StateAcked
}

type claimed struct {
	job
	channel string
	trunk   Trunk
}

// claim marks the due calls admit lets through (a trunk with room for
// the number) as dialing, each with a new channel id, and returns them;
// the others stay queued. A call outside its request's window is moved
// to the window's next opening instead.
func (s *Store) claim(ctx context.Context, now time.Time, admit func(number string) (Trunk, bool), loc *time.Location, newChannel func(int64) string) ([]claimed, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT c.id, c.request_id, c.number, c.attempts, r.spec FROM calls c
		JOIN requests r ON r.id = c.request_id WHERE c.state = ? AND c.next_at <= ? ORDER BY c.next_at, c.id`,
		stateQueued, now.Unix())
	if err != nil {
		return nil, err
	}
	var due []job
	for rows.Next() {
		var j job
		var spec string
		if err := rows.Scan(&j.id, &j.request, &j.number, &j.attempts, &spec); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal([]byte(spec), &j.req); err != nil {
			rows.Close()
			return nil, fmt.Errorf("call %d: stored request: %w", j.id, err)
		}
		due = append(due, j)
	}
	rows.Close()
	var out []claimed
	for _, j := range due {
		if next := j.req.Window.Next(now, loc); next.After(now) {
			if _, err := tx.ExecContext(ctx, `UPDATE calls SET next_at = ?, outcome = ? WHERE id = ?`,
				next.Unix(), "waiting for the calling window ("+next.In(loc).Format(time.RFC3339)+")", j.id); err != nil {
				return nil, err
			}
			continue
		}
		t, ok := admit(j.number)
		if !ok {
			continue
		}
		c := claimed{job: j, channel: newChannel(j.id), trunk: t}
		c.attempts++
		if _, err := tx.ExecContext(ctx, `UPDATE calls SET state = ?, attempts = ?, channel = ?, updated = ? WHERE id = ?`,
			stateDialing, c.attempts, c.channel, now.UTC().Format(time.RFC3339Nano), j.id); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, tx.Commit()
}

// finish records an attempt's result and, for an escalation, moves on to
// the next number or stops.
func (s *Store) finish(ctx context.Context, j claimed, res result, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if res.requeue {
		_, err := tx.ExecContext(ctx, `UPDATE calls SET state = ?, attempts = attempts - 1, outcome = ?, next_at = ? WHERE id = ?`,
			stateQueued, res.outcome, now.Add(time.Second).Unix(), j.id)
		if err != nil {
			return err
		}
		return tx.Commit()
	}
	next := int64(0)
	if res.state == stateQueued {
		next = now.Add(time.Duration(j.req.Delay) * time.Second).Unix()
	}
	if _, err := tx.ExecContext(ctx, `UPDATE calls SET state = ?, answered = ?, digit = ?, outcome = ?, next_at = ?, updated = ? WHERE id = ?`,
		res.state, res.answered, res.digit, res.outcome, next, now.UTC().Format(time.RFC3339Nano), j.id); err != nil {
		return err
	}
	if j.req.Escalate && res.state != stateQueued {
		if err := escalate(ctx, tx, j.request, succeeded(j.req, res.state), now); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// escalate skips the numbers left once one succeeded, else queues the
// next one.
func escalate(ctx context.Context, tx *sql.Tx, request int64, ok bool, now time.Time) error {
	stamp := now.UTC().Format(time.RFC3339Nano)
	if ok {
		_, err := tx.ExecContext(ctx, `UPDATE calls SET state = ?, outcome = ?, updated = ? WHERE request_id = ? AND state = ?`,
			StateSkipped, "an earlier number answered", stamp, request, stateWaiting)
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE calls SET state = ?, next_at = 0, updated = ? WHERE id =
		(SELECT id FROM calls WHERE request_id = ? AND state = ? ORDER BY seq LIMIT 1)`, stateQueued, stamp, request, stateWaiting)
	return err
}

// interrupted ends the calls that were being placed when kanca stopped:
// the PBX may have rung them, so they are not placed again (at most
// once). An escalation moves on to its next number.
func (s *Store) interrupted(ctx context.Context, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT c.id, c.request_id, r.spec FROM calls c JOIN requests r ON r.id = c.request_id WHERE c.state = ?`, stateDialing)
	if err != nil {
		return err
	}
	type hit struct {
		id, request int64
		req         Request
	}
	var hits []hit
	for rows.Next() {
		var h hit
		var spec string
		if err := rows.Scan(&h.id, &h.request, &spec); err != nil {
			rows.Close()
			return err
		}
		_ = json.Unmarshal([]byte(spec), &h.req)
		hits = append(hits, h)
	}
	rows.Close()
	for _, h := range hits {
		if _, err := tx.ExecContext(ctx, `UPDATE calls SET state = ?, outcome = ?, updated = ? WHERE id = ?`, StateInterrupted,
			"kanca stopped while placing this call; not placed again", now.UTC().Format(time.RFC3339Nano), h.id); err != nil {
			return err
		}
		if h.req.Escalate {
			if err := escalate(ctx, tx, h.request, false, now); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}
