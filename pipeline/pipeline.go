// Package pipeline runs kanca's one-way flow in a process: a PBX source
// feeds the call tracker, whose events go into the durable outbox, from
// which the dispatcher delivers them.
package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kanca/kanca/books"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
	"github.com/kanca/kanca/hooks"
)

// Source is a PBX connection: it calls emit for every event, in the order
// the PBX sent them, from one goroutine, until ctx ends.
type Source interface {
	Run(ctx context.Context, emit func(cdr.Input)) error
}

// Outbox takes what each input changed durably, several units in one
// transaction, in the order given (hooks.Outbox.Commit). errs[i] is unit
// i's own failure, which retrying will not cure; err is the
// transaction's, with nothing committed.
type Outbox interface {
	Commit(ctx context.Context, units []hooks.Unit) (errs []error, err error)
}

// Journal reads back what the outbox journaled (hooks.Store.Journal).
type Journal interface {
	Journal(ctx context.Context) (ins []cdr.Input, bad []error, err error)
}

// Seeder is a Source that can be told, before Run, the channels kanca
// followed when it last stopped (each one's latest input), so that its
// first reconciliation ends those that went away meanwhile.
type Seeder interface {
	Seed(live []cdr.Input)
}

// LastHeard is a Journal that also tells when the latest call it stored
// ended (hooks.Store.LastCallEnd): with the journal's latest input, where
// the gap of a restart begins.
type LastHeard interface {
	LastCallEnd(ctx context.Context) (time.Time, error)
}

// Ended is a Journal that also tells which calls it stored as ended at
// or after a time, by uuid (hooks.Store.EndedSince): books in whole
// seconds read after a gap need it to tell a call begun in the gap's
// first second from one heard before it.
type Ended interface {
	EndedSince(ctx context.Context, t time.Time) (map[string]bool, error)
}

// Dispatcher delivers what the outbox holds until ctx ends, then finishes
// the requests in flight.
type Dispatcher interface {
	Run(ctx context.Context) error
}

// Pipeline is source -> tracker -> outbox -> dispatcher.
type Pipeline struct {
	Source     Source
	Tracker    *cdr.Tracker
	Outbox     Outbox
	Dispatcher Dispatcher
	// Journal, when set, makes calls survive a restart, a crash included:
	// the inputs of live calls are journaled with the events they make,
	// and Run restores the tracker from them before it starts the source.
	Journal Journal
	// Books, when set, are the PBX's own records of its calls (--pbx-records):
	// after every (re)connect, Gap tells the tracker from them
	// what happened while nobody listened. Channels the source reports
	// gone are held until then, so that a call that ended in the gap ends
	// as the PBX wrote it down, not at the moment the stream was lost.
	Books books.Books
	// PBXID, when set, asks the PBX its id (Asterisk's entity id) for
	// calls the books tell before any input named it: a call's uuid is
	// made of it, and must be the one a live run would have sent.
	PBXID  func(ctx context.Context) (string, error)
	Logger *slog.Logger
	// ExpireEvery is how often calls past the maximum duration are ended
	// when the PBX is quiet (default 1 min).
	ExpireEvery time.Duration
	// StoreRetry is the wait between tries when the outbox cannot take
	// events (disk full, database locked) (default 1 s).
	StoreRetry time.Duration
	// MaxQueued bounds the inputs the tracker has taken and the outbox not
	// yet committed (default 4096). The source reads on
	// while a commit runs, which is what lets one commit take many
	// frames' events; once this many wait, it stops reading until the
	// store catches up, so a full disk holds the PBX stream rather than
	// dropping what was read.
	MaxQueued int
	// Observe, when set, sees every PBX input after the tracker took it
	// (the dialer follows the calls it placed). It must not block.
	Observe func(cdr.Input)
	// GroupWait is the least time between the starts of two outbox
	// commits while inputs keep coming (default DefaultGroupWait;
	// negative: none). Every commit is synced to disk; inputs that come
	// faster than commits share them anyway, and ones that come a little
	// slower would each pay for one of their own. So while it is busy the
	// committer waits up to this long for more. An input after a quiet
	// spell commits at once.
	GroupWait time.Duration

	inject   func(cdr.Input) // set while Run feeds the tracker
	mu       sync.Mutex      // the tracker is fed by the source and the expiry tick
	inputs   atomic.Int64
	events   atomic.Int64
	storeErr atomic.Int64
	dropped  atomic.Int64
	live     atomic.Int64 // the tracker's live calls, readable while p.mu is held by a blocked queue
	queued   atomic.Int64 // units taken and not yet committed (or dropped)

	// feed hands one input to the tracker, as the source's emit does;
	// set while Run runs.
	feed func(cdr.Input)
	// held are the gone channels waiting for Gap, and server the
	// PBX's id as its latest input named it (the books do not name it);
	// both only touched from the source's goroutine.
	held   []cdr.Input
	server string
	// joins are what the books told of calls the list showed and the
	// source is yet to adopt (books.Join), by the call's first leg;
	// only touched from the source's goroutine.
	joins map[string][]cdr.Input
	log   *slog.Logger
	// stopped is the latest PBX time the store says kanca heard before it
	// was last stopped: the start of the first gap, unless the source
	// heard later.
	stopped time.Time
}

// Stats counts what went through the pipeline.
type Stats struct {
	Inputs      int64 // PBX events fed to the tracker
	Events      int64 // call events committed to the outbox
	StoreErrors int64 // failed outbox commits (each retried)
	// Dropped counts events the outbox refused for good (they could not
	// be encoded); each is logged with its call.
	Dropped   int64
	LiveCalls int
	// Queued is what the tracker took that is not committed yet: inputs
	// (with their events) waiting for, or in, an outbox transaction.
	Queued int64
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() Stats {
	live := int(p.live.Load())
	return Stats{Inputs: p.inputs.Load(), Events: p.events.Load(), StoreErrors: p.storeErr.Load(),
		Dropped: p.dropped.Load(), LiveCalls: live, Queued: p.queued.Load()}
}

// Run runs until ctx ends or the source fails for good. On the way out it
// stops taking PBX events first, then lets the dispatcher finish the
// requests in flight; what is not delivered stays queued for the next run.
func (p *Pipeline) Run(ctx context.Context) error {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	every := p.ExpireEvery
	if every <= 0 {
		every = time.Minute
	}

	dctx, stopDispatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDispatch()
	dispatched := make(chan error, 1)
	go func() { dispatched <- p.Dispatcher.Run(dctx) }()

	maxQueued := p.MaxQueued
	if maxQueued <= 0 {
		maxQueued = 4096
	}
	// Units go into the queue under p.mu, in the order the tracker made
	// them, and one committer takes them in that order: a call's events
	// and journal entries reach the store in sequence across commits.
	queue := make(chan hooks.Unit, maxQueued)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		p.commit(ctx, log, queue)
	}()
	if err := p.restore(ctx, log, queue); err != nil {
		close(queue)
		<-committed
		stopDispatch()
		<-dispatched
		return err
	}
	handle := func(in *cdr.Input, f func() []cdr.Event) {
		p.mu.Lock()
		defer p.mu.Unlock()
		u := hooks.Unit{}
		if in != nil && p.Journal != nil && p.Tracker.Needs(*in) {
			u.Input = in
		}
		u.Events = f()
		if p.Journal != nil {
			u.Finished = p.Tracker.Finished(nil)
		}
		p.live.Store(int64(p.Tracker.Calls()))
		if u.Input != nil || len(u.Events) > 0 || len(u.Finished) > 0 {
			p.queued.Add(1)
			queue <- u
		}
	}

	p.mu.Lock()
	p.inject = func(in cdr.Input) { handle(&in, func() []cdr.Event { return p.Tracker.Handle(in) }) }
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.inject = nil
		p.mu.Unlock()
	}()

	sctx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case now := <-t.C:
				handle(nil, func() []cdr.Event { return p.Tracker.Expire(now, nil) })
			}
		}
	}()

	p.log = log
	p.feed = func(in cdr.Input) {
		if in.Kind == cdr.KindPlayed {
			// The dialer's alone: no call changes, nothing to journal.
			if p.Observe != nil {
				p.Observe(in)
			}
			return
		}
		p.inputs.Add(1)
		handle(&in, func() []cdr.Event { return p.Tracker.Handle(in) })
		if p.Observe != nil {
			p.Observe(in)
		}
	}
	srcErr := p.Source.Run(sctx, func(in cdr.Input) {
		if in.Server != "" {
			p.server = in.Server
		}
		if p.Books != nil && in.Kind == cdr.KindGone {
			p.held = append(p.held, in)
			return
		}
		if j, ok := p.joins[in.Channel.ID]; ok && in.Kind == cdr.KindCreated && in.Adopted {
			delete(p.joins, in.Channel.ID)
			p.adoptJoined(in, j)
			return
		}
		p.feed(in)
	})
	stopSource()
	wg.Wait()
	close(queue)
	<-committed

	stopDispatch()
	dispErr := <-dispatched
	if srcErr != nil && !errors.Is(srcErr, context.Canceled) {
		return fmt.Errorf("pbx source: %w", srcErr)
	}
	if dispErr != nil && !errors.Is(dispErr, context.Canceled) {
		return fmt.Errorf("dispatcher: %w", dispErr)
	}
	return nil
}

// ErrNotRunning is returned by Inject outside Run.
var ErrNotRunning = errors.New("pipeline: not running")

// Inject feeds the tracker an input kanca made itself (KindOriginate,
// before asking the PBX for the call), in line with the PBX's own inputs
// and journaled like them.
func (p *Pipeline) Inject(in cdr.Input) error {
	p.mu.Lock()
	f := p.inject
	p.mu.Unlock()
	if f == nil {
		return ErrNotRunning
	}
	f(in)
	return nil
}

// Gap closes the gap a source reports (follow.Config.OnReconcile); call
// it from the source's goroutine, after its reconciliation and before its
// next input. After a (re)connect it reads the PBX's books over the gap,
// from g.Since (the latest PBX time heard before it) to g.Until (when the
// stream came back): calls the tracker follows get what they missed
// (answers, the true end, who hung up and why), and calls that began in
// the gap are told whole, their events sent late and their records marked
// recovered. Then the channels the source reported gone are fed: a call
// the books ended is not ended again; one they do not know ends as
// reconciled. After a second list that found channels gone (g.Relist:
// they ended before the subscription, and the books read at the
// reconnect told what they kept of them), those are fed at once, not held
// for the next reconnect.
func (p *Pipeline) Gap(ctx context.Context, g follow.Gap) {
	if p.feed == nil {
		return
	}
	held := p.held
	p.held = nil
	if !g.Relist {
		// A call the previous list showed and the source never adopted
		// ended before it was: what the books kept of it is read again.
		p.joins = nil
		p.recover(ctx, g, held)
	}
	for _, in := range held {
		p.feed(in)
	}
}

// recover feeds what the books say of the gap g, before held (the
// channels the source reported gone).
func (p *Pipeline) recover(ctx context.Context, g follow.Gap, held []cdr.Input) {
	since, until := g.Since, g.Until
	// After a restart the gap began where the store says kanca last
	// heard: the latest input of the calls it journaled, or the end of
	// the latest call it stored, whichever is later. The source knows
	// only the first (the channels it was seeded with, none when no call
	// was live): a call that began after it and ended before the stop
	// was told whole, and read again it would be told twice.
	if p.stopped.After(since) {
		since = p.stopped
	}
	p.stopped = time.Time{}
	if p.Books == nil || since.IsZero() {
		return
	}
	if p.server == "" && p.PBXID != nil {
		id, err := p.PBXID(ctx)
		if err != nil {
			p.log.Warn("cannot ask the PBX its id; calls recovered from its records may get other uuids than live ones", "err", err)
		}
		p.server = id
	}
	follows := func(leg string) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.Tracker.Follows(leg)
	}
	listed := func(leg string) bool { return g.Listed[leg] }
	var told func(call string) bool
	if e, ok := p.Journal.(Ended); ok {
		// Books in whole seconds cannot place a call within the second
		// kanca stopped hearing the PBX in: the store says which of them
		// it told. Asked only then (it reads every call stored).
		var ended map[string]bool
		asked := false
		told = func(call string) bool {
			if !asked {
				asked = true
				var err error
				if ended, err = e.EndedSince(ctx, since.Truncate(time.Second)); err != nil {
					p.log.Warn("cannot read which calls the store holds; a call begun in the second the gap began in is taken as heard", "err", err)
				}
			}
			return ended == nil || ended[cdr.CallUUID(p.server, call)]
		}
	}
	up := func(leg string) bool { return g.Up[leg] }
	got, err := books.Recover(ctx, p.Books, since, until, books.Known{Follows: follows, Listed: listed, Up: up, Told: told})
	if err != nil {
		p.log.Warn("cannot read the PBX's records of the gap; calls that ended in it end as reconciled", "since", since, "until", until, "err", err)
		return
	}
	// The legs the books began and did not end, in the order they came.
	var open []cdr.Input
	ended := map[string]bool{}
	for _, in := range held {
		ended[in.Channel.ID] = true // the source's to end
	}
	ins := got.Inputs
	for _, in := range ins {
		if in.Server == "" {
			in.Server = p.server
		}
		p.feed(in)
		switch in.Kind {
		case cdr.KindDestroyed:
			ended[in.Channel.ID] = true
		case cdr.KindCreated:
			open = append(open, in)
		}
	}
	// One the list does not show ended in the moment before it: Asterisk
	// writes a row as its event happens, and the books were read before
	// this one's end was written. It is gone, as a channel kanca
	// remembered would be, lest its call stay open. Unless it began in
	// the second the list was taken: books in whole seconds (FreePBX's)
	// cannot say it began before the list, and one that began after is
	// the stream's.
	gone := 0
	listedAt := until.Truncate(time.Second)
	for _, in := range open {
		id := in.Channel.ID
		if ended[id] || g.Listed == nil || g.Listed[id] || !in.Time.Before(listedAt) || !follows(id) {
			continue
		}
		ended[id] = true
		gone++
		p.feed(cdr.Input{Kind: cdr.KindGone, Time: until, Server: in.Server, Channel: in.Channel})
	}
	p.joins = got.Joins
	p.log.Info("closed the gap from the PBX's records", "since", since, "until", until, "inputs", len(ins), "ended_unwritten", gone, "calls_to_join", len(got.Joins))
}

// adoptJoined adopts the first leg of a call the list showed (in, its
// adoption) with the legs the books told of it that ended in the gap
// (joined), as a run that never stopped would have told them: the call
// first, as the list shows it but for where it is now in the dialplan;
// then those legs, in their order and times, and where the call is now
// (a move the gap hid) among them, when the PBX says it began there
// (Channel.Routed: a ring group's member that lost the race was dialled
// by the group the call still runs; a callee that transferred the call
// ended before the call moved), else after them. Told at its adoption,
// where the call is now would come before the steps it followed, and
// those legs would join it.
func (p *Pipeline) adoptJoined(in cdr.Input, joined []cdr.Input) {
	first := in
	first.Channel.App, first.Channel.AppData = "", ""
	p.feed(first)
	move := in
	move.Kind = cdr.KindDialplan
	moved := in.Channel.App == ""
	r := in.Channel.Routed
	for _, j := range joined {
		// A leg made where the call is now may be stamped with the
		// instant it got there (FreeSWITCH's originated leg starts at
		// its originator's profile's time); an end at that instant
		// came before.
		if !moved && !r.IsZero() && (j.Time.After(r) || j.Time.Equal(r) && j.Kind == cdr.KindCreated) {
			move.Time, moved = later(in.Time, r), true
			p.feed(move)
		}
		if j.Server == "" {
			j.Server = cmp.Or(in.Server, p.server)
		}
		p.feed(j)
		move.Time = later(move.Time, j.Time)
	}
	if !moved {
		p.feed(move)
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// restore rebuilds the tracker from the journal and tells the source
// which channels were live, before the source starts.
func (p *Pipeline) restore(ctx context.Context, log *slog.Logger, queue chan<- hooks.Unit) error {
	if p.Journal == nil {
		return nil
	}
	ins, bad, err := p.Journal.Journal(ctx)
	if err != nil {
		return fmt.Errorf("restore live calls: %w", err)
	}
	for _, err := range bad {
		log.Error("skipping a damaged journal entry", "err", err)
	}
	for _, in := range ins {
		if in.Server != "" {
			p.server = in.Server
		}
		if in.Time.After(p.stopped) {
			p.stopped = in.Time
		}
	}
	if lh, ok := p.Journal.(LastHeard); ok && p.Books != nil {
		end, err := lh.LastCallEnd(ctx)
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		if end.After(p.stopped) {
			p.stopped = end
		}
	}
	if len(ins) == 0 {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if finished := p.Tracker.Restore(ins); len(finished) > 0 {
		p.queued.Add(1)
		queue <- hooks.Unit{Finished: finished}
	}
	latest := map[string]cdr.Input{}
	for _, in := range ins {
		if p.Tracker.Follows(in.Channel.ID) {
			if prev, ok := latest[in.Channel.ID]; ok && in.Channel.App == "" {
				// An input that names no application (FreeSWITCH's but
				// CHANNEL_EXECUTE) leaves the channel running what it
				// ran, as the source keeps it live: a list after the
				// restart showing it there is no move the gap hid.
				in.Channel.App, in.Channel.AppData = prev.Channel.App, prev.Channel.AppData
			}
			latest[in.Channel.ID] = in
		}
	}
	live := make([]cdr.Input, 0, len(latest))
	for _, in := range latest {
		live = append(live, in)
	}
	slices.SortFunc(live, func(a, b cdr.Input) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(a.Channel.ID, b.Channel.ID))
	})
	p.live.Store(int64(p.Tracker.Calls()))
	if s, ok := p.Source.(Seeder); ok {
		s.Seed(live)
	} else if len(live) > 0 {
		log.Warn("this PBX source cannot reconcile restored channels; calls that ended while kanca was stopped end at the maximum call duration", "channels", len(live))
	}
	log.Info("resumed live calls from the journal", "calls", p.Tracker.Calls(), "channels", len(live), "entries", len(ins))
	return nil
}

// DefaultGroupWait is Pipeline.GroupWait's default: at most a few
// milliseconds added to an event's way to its POST, for fewer synced
// commits while inputs come steadily but each slower than a commit. It is
// kept short because what the tracker took and no commit holds is what a
// crash loses (the journal and the reconcile cover a call only from what
// was committed), and because at 50 calls/s of the recorded mix a call's
// inputs already shared about three commits without it: the source reads
// on while a commit runs, and longer waits saved no CPU that showed.
const DefaultGroupWait = 2 * time.Millisecond

// maxCommit bounds the events and journal entries of one outbox
// transaction, so that one commit does not hold SQLite's writer lock for
// long.
const maxCommit = 512

// commit moves queued units into the outbox until the queue is closed and
// empty, taking all that wait (up to maxCommit) in each transaction, and,
// while inputs keep coming, waiting for more until GroupWait has passed
// since the previous commit began. A transaction that fails is retried
// with the same units and nothing behind them overtakes it.
func (p *Pipeline) commit(ctx context.Context, log *slog.Logger, queue <-chan hooks.Unit) {
	wait := p.StoreRetry
	if wait <= 0 {
		wait = time.Second
	}
	group := p.GroupWait
	if group == 0 {
		group = DefaultGroupWait
	}
	// What the tracker took was taken from the PBX: commit it even while
	// shutting down.
	commitCtx := context.WithoutCancel(ctx)
	var units []hooks.Unit
	size := func(u hooks.Unit) int { return len(u.Events) + 1 }
	var last time.Time // when the previous commit began
	// Stop and Reset leave no stale tick behind (Go 1.23 timers).
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	n := 0 // the size of units
	// take adds what waits in the queue, without waiting, up to maxCommit.
	take := func() {
		for n < maxCommit {
			select {
			case u, ok := <-queue:
				if !ok {
					return
				}
				units = append(units, u)
				n += size(u)
			default:
				return
			}
		}
	}
	for {
		if len(units) == 0 {
			u, ok := <-queue
			if !ok {
				return
			}
			units = append(units, u)
		}
		n = 0
		for _, u := range units {
			n += size(u)
		}
		take()
		// Busy: the previous commit began less than a group's wait ago.
		// Then this one sleeps out the rest of it and takes what came
		// meanwhile. It sleeps on the timer alone, not on the queue, so the
		// tracker's inputs do not wake it one by one.
		if rest := group - time.Since(last); group > 0 && rest > 0 && n < maxCommit && ctx.Err() == nil {
			linger.Reset(rest)
			select {
			case <-linger.C:
			case <-ctx.Done():
				linger.Stop()
			}
			take()
		}
		last = time.Now()
		errs, err := p.Outbox.Commit(commitCtx, units)
		if err != nil {
			p.storeErr.Add(1)
			events := 0
			for _, u := range units {
				events += len(u.Events)
			}
			if ctx.Err() != nil {
				// Shutting down: these were never committed. Their calls are
				// still live on the PBX or ended now; the next start
				// reconciles them.
				log.Error("inputs not stored at shutdown", "inputs", len(units), "events", events, "err", err)
				p.queued.Add(-int64(len(units)))
				units = units[:0]
				continue
			}
			log.Error("cannot store call events; holding them until the store accepts them", "inputs", len(units), "events", events, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
			continue
		}
		for i, u := range units {
			if errs[i] != nil {
				p.dropped.Add(int64(len(u.Events)))
				log.Error("call events refused by the outbox", "call", u.Events[0].CallID, "events", len(u.Events), "err", errs[i])
				continue
			}
			p.events.Add(int64(len(u.Events)))
		}
		p.queued.Add(-int64(len(units)))
		units = units[:0]
	}
}
