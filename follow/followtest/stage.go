// Package followtest holds what the fake PBXs of the tests, the demo and
// the benchmarks share (aritest for Asterisk, esltest for FreeSWITCH): a
// Stage that plays a script of recorded events to the connected clients,
// keeps the channels the script implies, and can be told to cut its
// clients off, carry on through a gap with nobody listening, or hang.
// Each fake adds only its protocol: how a client connects and subscribes,
// how an event is framed, how the channel list is asked for and shaped.
package followtest

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Stage is the state a fake PBX shares with its clients' goroutines,
// behind one lock. Its exported methods without "Locked" are for tests;
// those with it are for the fake built on it, which holds the lock (Lock,
// Unlock) around them and around its own state.
type Stage struct {
	pace   time.Duration
	apply  func(i int, raw []byte)
	forget bool
	done   chan struct{}

	mu        sync.Mutex
	script    [][]byte
	pos       int // events the PBX has sent or lived through
	dropAt    int
	gap       int
	hung      bool
	hangUntil *time.Timer
	attempts  int
	conns     int
	listings  int
	handed    int           // events Next handed out to send
	sent      int           // of them, those Sent
	pausing   int           // answers waiting for what was handed out to be sent
	changed   chan struct{} // closed and replaced whenever the above changes
	closed    bool
}

// StageOptions configures a Stage.
type StageOptions struct {
	// Pace is the pause before each event is sent; zero sends as fast as
	// the clients read.
	Pace time.Duration
	// Apply moves the fake's own state (its channel table) by the event
	// at position i of the script, sent or lived through; called with the
	// lock held.
	Apply func(i int, raw []byte)
	// ForgetSent drops each event once sent or lived through, so a long
	// benchmark script does not stay in memory.
	ForgetSent bool
}

// NewStage returns an empty Stage.
func NewStage(opts StageOptions) *Stage {
	return &Stage{
		pace:    opts.Pace,
		apply:   opts.Apply,
		forget:  opts.ForgetSent,
		done:    make(chan struct{}),
		dropAt:  -1,
		changed: make(chan struct{}),
	}
}

// Lock takes the Stage's lock, which also guards the fake's own state.
func (s *Stage) Lock() { s.mu.Lock() }

// Unlock releases it.
func (s *Stage) Unlock() { s.mu.Unlock() }

// Done is closed when the Stage is closed.
func (s *Stage) Done() <-chan struct{} { return s.done }

// Close marks the Stage closed, calls cut (with the lock held) to cut the
// fake's clients off, and wakes every waiter; false, without calling cut,
// when it already was.
func (s *Stage) Close(cut func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.closed = true
	close(s.done)
	if s.hangUntil != nil {
		s.hangUntil.Stop()
	}
	cut()
	s.NotifyLocked()
	return true
}

// ClosedLocked says whether the Stage is closed.
func (s *Stage) ClosedLocked() bool { return s.closed }

// NotifyLocked wakes whoever waits for a change (Changed).
func (s *Stage) NotifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Play appends events to the script. Clients able to take them get them
// at once (after Pace); events played while nobody can wait for the next
// client. Events no client should see belong in DropAfter's gap.
func (s *Stage) Play(events ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, events...)
	s.NotifyLocked()
}

// DropAfter cuts the clients off once n events of the script have been
// sent, then lives through the next gap events with nobody connected:
// they change the channels the PBX lists but no client receives them. The
// gap events must already be played; a gap longer than the script stops
// at its end. The next client resumes after the gap. n counts from the
// start of the script; a position already passed never triggers.
func (s *Stage) DropAfter(n, gap int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAt, s.gap = n, gap
	s.NotifyLocked()
}

// LiveThrough moves the script n events on (up to its end) without
// sending them: the PBX going on while kanca is away. Its channels
// change; no client ever receives these events. It returns how many it
// lived through.
func (s *Stage) LiveThrough(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	done := 0
	for ; done < n && s.pos < len(s.script); done++ {
		s.advanceLocked()
	}
	if done > 0 {
		s.NotifyLocked()
	}
	return done
}

// Hang makes the PBX stop answering for d (until Resume when d <= 0): the
// fake greets nobody, answers nothing and sends no events while it lasts
// (it waits in Awake); connections stay open, as with a PBX that is stuck.
func (s *Stage) Hang(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hung = true
	if s.hangUntil != nil {
		s.hangUntil.Stop()
		s.hangUntil = nil
	}
	if d > 0 {
		s.hangUntil = time.AfterFunc(d, s.Resume)
	}
	s.NotifyLocked()
}

// Resume ends a Hang.
func (s *Stage) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hung = false
	s.NotifyLocked()
}

// Awake waits out a Hang; false when the Stage closed meanwhile.
func (s *Stage) Awake() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.hung && !s.closed {
		ch := s.changed
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
	return !s.closed
}

// Pause waits d; false when ctx ends or the Stage closes meanwhile.
func (s *Stage) Pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// Attempts is how many connections arrived, refused or not.
func (s *Stage) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Connections is how many clients got in (logged in, subscribed).
func (s *Stage) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Listings is how many channel lists the PBX answered. A client lists
// channels right after subscribing, so a test that plays its script only
// once Listings has moved knows every event arrives after the list.
func (s *Stage) Listings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listings
}

// Pos is how many events of the script the PBX has sent or lived through.
func (s *Stage) Pos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// Changed returns a channel closed at the next change of the fake's state
// (an event sent, a connection opened or closed, a list answered, events
// played), so callers can wait for a condition without polling on a timer.
func (s *Stage) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// AttemptLocked counts a connection attempt.
func (s *Stage) AttemptLocked() { s.attempts++; s.NotifyLocked() }

// ConnectedLocked counts a client that got in (n = 1), or one counted too
// early that did not after all (n = -1).
func (s *Stage) ConnectedLocked(n int) { s.conns += n; s.NotifyLocked() }

// ListedLocked counts a channel list answered.
func (s *Stage) ListedLocked() { s.listings++; s.NotifyLocked() }

// Step is what Next found to do.
type Step int

const (
	Stop Step = iota // ctx ended or the Stage closed
	Send             // send the event Next returned
	Drop             // the clients were cut off (DropAfter)
)

// Next waits, after Pace, until a client can take the next event (ready,
// called with the lock held) or a drop is due, and returns which. For
// Send, the event at position i of the script has been applied to the
// fake's state; the caller sends raw. For Drop, the gap has been lived
// through and drop called, with the lock held, before any client can
// connect again: it cuts the clients off at once, so the next event waits
// for the next client.
func (s *Stage) Next(ctx context.Context, ready func() bool, drop func()) (step Step, i int, raw []byte) {
	if !s.Pause(ctx, s.pace) {
		return Stop, 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for !s.closed && ctx.Err() == nil && !(ready() && !s.hung && s.pausing == 0 && (s.pos < len(s.script) || s.pos == s.dropAt)) {
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		s.mu.Lock()
	}
	if s.closed || ctx.Err() != nil {
		return Stop, 0, nil
	}
	if s.pos == s.dropAt {
		for k := 0; k < s.gap && s.pos < len(s.script); k++ {
			s.advanceLocked()
		}
		s.dropAt, s.gap = -1, 0
		drop()
		s.NotifyLocked()
		return Drop, 0, nil
	}
	i, raw = s.pos, s.script[s.pos]
	s.advanceLocked()
	s.handed++
	s.NotifyLocked()
	return Send, i, raw
}

// Sent says an event Next handed out for sending was written to the
// clients (or could not be): the fake calls it once per Send.
func (s *Stage) Sent() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent++
	s.NotifyLocked()
}

// WaitSentLocked waits, the lock held but while it waits, until every
// event Next handed out was Sent, and holds Next from handing out more
// meanwhile. The fake's state moves when Next hands an event out, before
// it is written: an answer built after this wait, the lock still held,
// shows the PBX as the events its clients were sent left it, never ahead
// of them, as a PBX's own does.
func (s *Stage) WaitSentLocked() {
	s.pausing++
	defer func() {
		s.pausing--
		s.NotifyLocked()
	}()
	for s.sent < s.handed && !s.closed {
		ch := s.changed
		s.mu.Unlock()
		<-ch
		s.mu.Lock()
	}
}

// advanceLocked moves the script one event on.
func (s *Stage) advanceLocked() {
	raw := s.script[s.pos]
	if s.forget {
		s.script[s.pos] = nil
	}
	s.pos++
	if s.apply != nil {
		s.apply(s.pos-1, raw)
	}
}

// Channels is a PBX's channel table: what it lists, in creation order.
// Guarded by its Stage's lock.
type Channels[T any] struct {
	m       map[string]*entry[T]
	created int
}

type entry[T any] struct {
	seq int
	v   T
}

// Get returns a live channel's value.
func (c *Channels[T]) Get(id string) (T, bool) {
	e, ok := c.m[id]
	if !ok {
		var zero T
		return zero, false
	}
	return e.v, true
}

// Put sets a channel's value, creating it (last in creation order) if it
// is not live.
func (c *Channels[T]) Put(id string, v T) {
	if e, ok := c.m[id]; ok {
		e.v = v
		return
	}
	if c.m == nil {
		c.m = map[string]*entry[T]{}
	}
	c.created++
	c.m[id] = &entry[T]{seq: c.created, v: v}
}

// Delete ends a channel.
func (c *Channels[T]) Delete(id string) { delete(c.m, id) }

// Len is how many channels live; Created how many ever did.
func (c *Channels[T]) Len() int     { return len(c.m) }
func (c *Channels[T]) Created() int { return c.created }

// IDs is the live channels' ids, in creation order.
func (c *Channels[T]) IDs() []string {
	ids := make([]string, 0, len(c.m))
	for _, e := range c.sorted() {
		ids = append(ids, e.id)
	}
	return ids
}

// Values is the live channels' values, in creation order.
func (c *Channels[T]) Values() []T {
	vs := make([]T, 0, len(c.m))
	for _, e := range c.sorted() {
		vs = append(vs, e.v)
	}
	return vs
}

type idEntry[T any] struct {
	id string
	*entry[T]
}

func (c *Channels[T]) sorted() []idEntry[T] {
	all := make([]idEntry[T], 0, len(c.m))
	for id, e := range c.m {
		all = append(all, idEntry[T]{id, e})
	}
	slices.SortFunc(all, func(a, b idEntry[T]) int { return a.seq - b.seq })
	return all
}
