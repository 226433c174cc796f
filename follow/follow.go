package follow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/internal/backoff"
)

// Dial is what a PBX's adapter gives the Follower: it connects,
// authenticates and subscribes to the PBX's events, and returns the
// session. The subscription must exist when it returns: the channel list
// is taken after it, so that every change after the list is also in the
// stream.
type Dial func(ctx context.Context) (Session, error)

// Session is one connection to the PBX, used by one goroutine (the
// Follower's Run) but for Probe and Close, which the liveness probe calls
// from its own.
type Session interface {
	// List takes the channel list, once, right after Dial.
	List(ctx context.Context) (Listing, error)
	// Next waits until something happens on the connection (an event read,
	// events held back released), appends the inputs it decoded to dst, in
	// the PBX's order, and returns them; none is fine. When the connection
	// ends it returns an error, with whatever inputs it still held.
	Next(ctx context.Context, dst []cdr.Input) ([]cdr.Input, error)
	// Probe asks the PBX for an answer, within ctx. An error wrapping
	// context.DeadlineExceeded means no answer came.
	Probe(ctx context.Context) error
	// Close ends the session; a Next under way returns. cause, when not
	// nil, is why: Next's error should say it.
	Close(cause error)
}

// Describer is what a Session may add to its channel list: a list shows
// where each channel is now, not how its call began. Describe asks the
// PBX what it kept of that for the listed channels about to be adopted
// (the call a leg belongs to, the number the call arrived on), filling
// them in place; a channel gone meanwhile is left as listed. An error
// leaves the rest as listed: the session goes on, and its Next says
// whether the connection failed.
type Describer interface {
	Describe(ctx context.Context, chans []*cdr.Channel) error
}

// Listed is one channel of a channel list, shaped as the adapter's decoder
// shapes an event's channel, with the server that runs it.
type Listed struct {
	Channel cdr.Channel
	Server  string
	// Bridge names the bridge the channel talks in, when the PBX lists
	// its bridges (ARI) or its bridged pairs (FreeSWITCH's calls): "" for
	// none. The channels of one bridge are legs of one call, joined (a
	// callee and its caller, a picker and the call it took), and the one
	// bridged with a call's caller is who the call is connected to now.
	// Only bridges that join calls count: not a holding bridge (a parking
	// lot) nor a conference.
	Bridge string
	// BridgedAt is when that bridge formed, as the PBX says (FreeSWITCH's
	// calls table, in whole seconds); zero when it does not.
	BridgedAt time.Time
}

// Listing is a PBX's channel list as the adapter read it.
type Listing struct {
	Channels []Listed
	// At is the PBX's clock when it listed, zero when the answer has none.
	At time.Time
	// Ended names channels whose end is among events already read but not
	// yet handed over (a protocol that answers on the event stream reads
	// them while it waits for the list): they are not reported gone, their
	// own events say precisely when they ended.
	Ended map[string]bool
	// Coarse says the list's states are coarser than the events': only an
	// answer ("Up") and another application missed in a gap are reported,
	// on the remembered snapshot. Otherwise any state change or move is,
	// with the listed snapshot, and a listed snapshot replaces the
	// remembered one.
	Coarse bool
}

// Gap is what a (re)connect's reconciliation knew of the time nobody
// listened, for Config.OnReconcile.
type Gap struct {
	// First is true for the first connection of a Run: the gap is then the
	// time kanca was stopped, and Since the latest input seeded (zero when
	// nothing was seeded).
	First bool
	// Since is the latest PBX time seen before the gap: when the stream
	// was last heard, as far as the Follower can tell; zero if never.
	Since time.Time
	// Until is when the stream came back: the PBX's clock at the channel
	// list when the list carries one, else this machine's.
	Until time.Time
	// Gone and Pending count the channels reported gone and the listed
	// ones held for their next event (to adopt or to update).
	Gone, Pending int
	// Relist says a second list (Config.Relist) found channels the first
	// showed that ended before the subscription, reported gone (Gone):
	// the gap was already told at the (re)connect, and these are to be
	// ended now, not held for another.
	Relist bool
	// Listed names the channels the (re)connect's list showed, and those
	// whose end was read while it was taken: a channel the PBX's books
	// began in the gap and did not end, and that is not among them, ended
	// before the list (nil for Relist).
	Listed map[string]bool
	// Up names the channels of Listed the list showed whose end was not
	// read while it was taken (nil for Relist).
	Up map[string]bool
}

// Backoff shapes the waits between connection attempts: Initial, doubling
// up to Max, each spread by ±Jitter so a fleet of kanca instances does not
// reconnect in step after a PBX restart.
type Backoff struct {
	Initial time.Duration // default 500 ms
	Max     time.Duration // default 30 s
	Jitter  float64       // fraction of each wait, default 0.2
}

// WithDefaults fills what b leaves unset.
func (b Backoff) WithDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = 500 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Jitter <= 0 || b.Jitter >= 1 {
		b.Jitter = 0.2
	}
	return b
}

// Wait is the pause before attempt number attempt (0-based); r is a value
// in [0,1) that spreads it.
func (b Backoff) Wait(attempt int, r float64) time.Duration {
	return backoff.Wait(b.Initial, b.Max, b.Jitter, attempt, r)
}

// Config says how to follow a PBX; the adapter fills it.
type Config struct {
	// Name prefixes errors of misuse ("ari"); PBX names the PBX in logs
	// ("Asterisk").
	Name, PBX string
	Logger    *slog.Logger // default slog.Default()
	Backoff   Backoff
	// ProbeInterval is how often an idle connection is probed; zero or
	// negative turns the probe off. ProbeTimeout bounds the wait for its
	// answer. Probe is what the probe is called in logs ("pings").
	ProbeInterval, ProbeTimeout time.Duration
	Probe                       string
	// Refusals are the errors that mean the PBX turned kanca away
	// (credentials, an ACL, or, from a session, another client taking
	// its events): the operator must act, so they are logged as errors,
	// with RefusalAttrs. They are retried all the same, and the backoff
	// keeps growing across them.
	Refusals     []error
	RefusalAttrs []any
	// ConnectedAttrs say where the PBX is, in the (re)connected log line.
	ConnectedAttrs []any
	// OtherIsSnapshot says an input's Other carries the other channel's
	// full snapshot, which then refreshes what is remembered of it (ARI's
	// Dial); otherwise it is only an id.
	OtherIsSnapshot bool
	// Relist, when positive, takes the channel list again this long after
	// every (re)connect, once an event or a probe answer comes, for a PBX
	// whose list lags its stream (FreeSWITCH's list is a database the
	// core writes behind its events): a channel the first list kept
	// alive that said nothing since and is no longer listed ended before
	// the subscription, and a listed channel the first list missed is
	// adopted.
	Relist time.Duration
	// Settle, when positive, tells what a list said of the channels still
	// held for their next input this long after the (re)connect, at the
	// first input after it: for a PBX whose list is exact, events queued
	// behind the list have come by then, and a change held longer (a
	// callee answered in the gap, quiet since) lives only in memory: a
	// crash before the channel's next event would lose it, and the call
	// would end unanswered. A stream silent meanwhile holds them until it
	// speaks.
	Settle time.Duration
	// CheckSilence has the probe, when the stream has said nothing for a
	// ProbeInterval while channels live, list channels: if one it follows
	// is no longer listed, events are lost on a connection that still
	// answers the probe (ARI answers pings on a socket whose application
	// another client took, or that Asterisk no longer feeds), and the
	// session is dropped so the reconnect reconciles. The adapter's List
	// must then be safe beside Next.
	CheckSilence bool
	// OnReconcile, if set, is called after every (re)connect's
	// reconciliation inputs were emitted and before any event of the new
	// connection, and after a second list that reported channels gone
	// (Gap.Relist), from the goroutine that runs Run: a slow hook slows
	// reading, as a slow emit does.
	OnReconcile func(Gap)
	// Now is the clock of the PBX's time the Follower reads where the
	// PBX does not say it (Gap.Until when a list carries no clock) and
	// times Settle and Relist by; default time.Now. A test that plays a
	// recorded PBX faster than it happened gives the recording's clock.
	Now func() time.Time
}

const (
	// maxTypes bounds Stats.ByType against a peer inventing event types.
	maxTypes = 128
	// excerptLen is how much of a malformed event is logged.
	excerptLen = 160
)

// Stats is a copy of a Follower's counters, for metrics.
type Stats struct {
	Received  uint64            // events received
	ByType    map[string]uint64 // events per type, as the adapter names them
	Unknown   uint64            // events of types the PBX does not document
	Malformed uint64            // events skipped because they did not decode
	Link
}

// Link is how the connection to the PBX fares and what reconciliation
// did, the same for every PBX: the adapters' Stats embed it.
type Link struct {
	Reconnects uint64 // successful connections after the first
	// Failures counts connection attempts that failed (refused, timed
	// out, turned away) before a session came up.
	Failures  uint64
	Connected bool
	Since     time.Time // when the current connection came up (zero while down)
	// Down is when the last connection ended, or following began, while
	// no connection is up (zero while one is).
	Down      time.Time
	LastError string // the latest connection or read error, "" if none yet
	Gone      uint64 // channels reported gone by reconciliation
	Adopted   uint64 // channels adopted by reconciliation
}

// Follower follows one PBX through an Adapter and turns its events into
// tracker inputs.
type Follower struct {
	cfg     Config
	log     *slog.Logger
	dial    Dial
	jitter  func() float64 // in [0,1); replaceable by tests
	running atomic.Bool

	// For the liveness probe: how many times Next returned, and since when
	// (Unix ns) the loop has been waiting in Next (0 while it handles what
	// Next returned).
	reads        atomic.Uint64
	waitingSince atomic.Int64

	// Owned by the Run goroutine.
	live     map[string]liveChannel
	pending  map[string]pendingChannel
	lastTime time.Time // latest event time seen: when the connection dropped, at best
	everUp   bool
	// unconfirmed holds the remembered channels the latest list showed
	// alive and the stream has not spoken of since, until Relist; they
	// would be gone since unconfirmedAt.
	unconfirmed   map[string]bool
	unconfirmedAt time.Time
	// unheard holds the listed channels whose first input since the list
	// is still to come, with the time the list can be placed at: an
	// answer a list could not show (its state lags, as FreeSWITCH's
	// callstate does) is read from that input's snapshot.
	unheard map[string]time.Time
	// bridges holds the latest list's bridges that join a channel held
	// for adoption, by id; each is told once its channels are adopted
	// (see tellBridges).
	bridges map[string]listedBridge
	// ended holds the channels whose end was read, with its time, until
	// a list no longer shows them (a channel id never comes back): a
	// list that lags the stream (FreeSWITCH keeps a leg in its table
	// until CHANNEL_DESTROY, after CHANNEL_HANGUP_COMPLETE, and writes
	// the table behind its events) shows them still, and adopted they
	// would be told again. pruneAt is the size at which those older than
	// endedMemory go, for a follower that lists seldom.
	ended   map[string]time.Time
	pruneAt int

	mu    sync.Mutex
	stats Stats
	// ids are the live channels' ids, for the probe's goroutine to read
	// (live is the Run goroutine's alone); guarded by mu.
	ids map[string]bool
}

// liveChannel is a channel seen created (or adopted) and not yet
// destroyed, with its latest snapshot and the server that reported it.
type liveChannel struct {
	ch     cdr.Channel
	server string
}

// pendingChannel is what a channel list said that the stream may still be
// about to say itself: events queued behind the list describe the same
// moments more precisely. It is settled by the channel's next event.
type pendingChannel struct {
	lc     liveChannel
	bridge string // the joining bridge the list shows it in (Listed.Bridge)
	adopt  bool   // unknown channel: adopt it; else its state changed
	// moved: a known channel the list shows at another place in the
	// dialplan (a menu's caller now dialling an extension): the gap hid
	// the move, which routes its call. movedAt is when it is placed, if
	// the PBX or the legs it made say better than at: a move and an
	// answer the gap hid are seldom at one moment (a forward dialled,
	// then answered).
	moved   bool
	movedAt time.Time
	// changed: a known channel whose state the list shows changed.
	changed bool
	at      time.Time // the latest time the list can be placed at
}

// New returns a Follower of the PBX dial opens sessions with. It does not
// connect.
func New(cfg Config, dial Dial) *Follower {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Backoff = cfg.Backoff.WithDefaults()
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Follower{
		cfg:         cfg,
		log:         cfg.Logger,
		dial:        dial,
		jitter:      rand.Float64,
		live:        make(map[string]liveChannel),
		pending:     make(map[string]pendingChannel),
		unconfirmed: make(map[string]bool),
		unheard:     make(map[string]time.Time),
		bridges:     make(map[string]listedBridge),
		ended:       make(map[string]time.Time),
		pruneAt:     minPruneAt,
		ids:         make(map[string]bool),
		stats:       Stats{ByType: make(map[string]uint64)},
	}
}

// Seed tells the Follower, before Run, which channels kanca followed when
// it last stopped, each by its latest input: the first reconciliation
// reports those the PBX no longer lists as gone, at the latest time
// seeded. It must not be called while Run runs.
func (f *Follower) Seed(live []cdr.Input) {
	if f.running.Load() {
		panic(f.cfg.Name + ": Seed called while the Source runs")
	}
	for _, in := range live {
		f.live[in.Channel.ID] = liveChannel{ch: in.Channel, server: in.Server}
		f.track(in.Channel.ID, true)
		if in.Time.After(f.lastTime) {
			f.lastTime = in.Time
		}
	}
}

// Run connects and calls emit with every input, synchronously and in the
// PBX's order, from the calling goroutine: a slow emit slows reading (TCP
// back-pressure to the PBX) instead of dropping events. After each
// (re)connect the reconciliation inputs (KindGone, and the KindCreated and
// KindState held for the channels' next events) come before any event of
// the new connection. Run reconnects, with backoff, after every failure, a
// refusal included, and returns nil when ctx ends. It returns an error
// only if misused.
func (f *Follower) Run(ctx context.Context, emit func(cdr.Input)) error {
	if emit == nil {
		return errors.New(f.cfg.Name + ": Run needs an emit function")
	}
	if !f.running.CompareAndSwap(false, true) {
		return errors.New(f.cfg.Name + ": Source is already running")
	}
	defer f.running.Store(false)
	f.mu.Lock()
	f.stats.Down = time.Now()
	f.mu.Unlock()

	attempt := 0
	for {
		up, err := f.session(ctx, emit)
		if ctx.Err() != nil {
			return nil
		}
		refused := f.refused(err)
		if up && !refused {
			attempt = 0
		}
		f.setError(err)
		if !up {
			f.mu.Lock()
			f.stats.Failures++
			f.mu.Unlock()
		}
		wait := f.cfg.Backoff.Wait(attempt, f.jitter())
		attempt++
		// One line an admin reads: the cause without the chain of
		// wrappers, the wait rounded, and where to look next.
		next := fmt.Sprintf("; retrying in %s (kanca doctor checks the connection)", roundWait(wait))
		switch {
		case up && refused:
			// Another client took the stream (ARI's ApplicationReplaced):
			// taking it back at once would only fight it, so the waits grow.
			f.log.Error("lost the event stream of "+f.cfg.PBX+": "+Brief(err)+next, f.cfg.RefusalAttrs...)
		case up:
			f.log.Warn("disconnected from "+f.cfg.PBX+": "+Brief(err)+next, f.cfg.ConnectedAttrs...)
		case f.refused(err):
			f.log.Error("cannot connect to "+f.cfg.PBX+": "+Brief(err)+next, f.cfg.RefusalAttrs...)
		default:
			f.log.Warn("cannot connect to "+f.cfg.PBX+": "+Brief(err)+next, f.cfg.ConnectedAttrs...)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (f *Follower) refused(err error) bool {
	for _, r := range f.cfg.Refusals {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// session is one connection: dial, reconcile, read until it fails. up says
// whether it got as far as reconciling, which resets the backoff.
func (f *Follower) session(ctx context.Context, emit func(cdr.Input)) (up bool, err error) {
	s, err := f.dial(ctx)
	if err != nil {
		return false, err
	}
	defer s.Close(nil)
	l, err := f.list(ctx, s)
	if err != nil {
		// What the session read before the list failed is real (a
		// protocol that answers on its event stream reads events while it
		// waits): closed, it hands that over, then fails.
		s.Close(err)
		got, rerr := s.Next(ctx, nil)
		for ; rerr == nil && ctx.Err() == nil; got, rerr = s.Next(ctx, got[:0]) {
			for _, in := range got {
				f.handle(in, emit)
			}
		}
		for _, in := range got {
			f.handle(in, emit)
		}
		return false, err
	}
	gap := f.reconcile(l, emit)
	var relistAt, settleAt time.Time
	if f.cfg.Relist > 0 {
		relistAt = f.cfg.Now().Add(f.cfg.Relist)
	}
	if f.cfg.Settle > 0 {
		settleAt = f.cfg.Now().Add(f.cfg.Settle)
	}

	f.mu.Lock()
	f.stats.Connected = true
	f.stats.Since, f.stats.Down = time.Now(), time.Time{}
	if f.everUp {
		f.stats.Reconnects++
	}
	f.mu.Unlock()
	if f.everUp {
		f.log.Info("reconnected to "+f.cfg.PBX, f.cfg.ConnectedAttrs...)
	} else {
		f.log.Info("connected to "+f.cfg.PBX, f.cfg.ConnectedAttrs...)
	}
	gap.First = !f.everUp
	f.everUp = true
	defer func() {
		f.mu.Lock()
		f.stats.Connected = false
		f.stats.Since, f.stats.Down = time.Time{}, time.Now()
		f.mu.Unlock()
	}()
	if f.cfg.OnReconcile != nil {
		f.cfg.OnReconcile(gap)
	}

	if f.cfg.ProbeInterval > 0 {
		pctx, cancel := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			f.probe(pctx, s)
		}()
		// The prober never outlives its session.
		defer func() {
			cancel()
			<-stopped
		}()
	}
	var got []cdr.Input
	for {
		f.waitingSince.Store(time.Now().UnixNano())
		got, err = s.Next(ctx, got[:0])
		f.waitingSince.Store(0)
		f.reads.Add(1)
		for _, in := range got {
			f.handle(in, emit)
		}
		if err != nil {
			return true, err
		}
		if !settleAt.IsZero() && !f.cfg.Now().Before(settleAt) {
			settleAt = time.Time{}
			f.settleHeld(emit)
		}
		if !relistAt.IsZero() && !f.cfg.Now().Before(relistAt) {
			relistAt = time.Time{}
			l, err := f.list(ctx, s)
			if err != nil {
				// The session may hold events read meanwhile: Next hands
				// them over, with the error when the connection ended.
				f.log.Warn("could not list "+f.cfg.PBX+"'s channels again", "err", err)
				continue
			}
			if n := f.relist(l, emit); n > 0 && f.cfg.OnReconcile != nil {
				// Those ended before the subscription: whoever holds what
				// a reconcile reports gone is told they are all there is.
				f.cfg.OnReconcile(Gap{Relist: true, Since: f.unconfirmedAt, Until: f.until(l), Gone: n})
			}
		}
	}
}

// list takes the channel list and has the session describe the channels
// it is about to adopt.
func (f *Follower) list(ctx context.Context, s Session) (Listing, error) {
	l, err := s.List(ctx)
	if err != nil {
		return l, err
	}
	d, ok := s.(Describer)
	if !ok {
		return l, nil
	}
	var unknown []*cdr.Channel
	// Remembered channels the list shows answered in the gap are asked
	// when, and those it shows moved since when they got there (and
	// what the PBX keeps of the queue they went through): described on
	// a copy, of which only those are taken.
	asked := map[*cdr.Channel]*cdr.Channel{}
	for i := range l.Channels {
		ch := &l.Channels[i].Channel
		// A remembered channel the PBX never said the call of (a dialled
		// leg created before its dial) is asked too: the dial may have
		// been in the gap.
		lc, known := f.live[ch.ID]
		switch {
		case !known || lc.ch.LinkedID == "":
			unknown = append(unknown, ch)
		case ch.State == "Up" && lc.ch.State != "Up", ranAnother(lc.ch, *ch):
			c := *ch
			asked[&c] = ch
			unknown = append(unknown, &c)
		}
	}
	if len(unknown) == 0 {
		return l, nil
	}
	if err := d.Describe(ctx, unknown); err != nil {
		// The list stands as it is: failing the session here would lose
		// the events read meanwhile, which Next hands over, error and all.
		f.log.Warn("could not ask "+f.cfg.PBX+" about listed channels; adopting them as listed", "err", err)
	}
	for c, ch := range asked {
		ch.Answered, ch.Routed, ch.Queue, ch.Queued = c.Answered, c.Routed, c.Queue, c.Queued
	}
	return l, nil
}

// track keeps ids in step with live.
func (f *Follower) track(id string, live bool) {
	f.mu.Lock()
	if live {
		f.ids[id] = true
	} else {
		delete(f.ids, id)
	}
	f.mu.Unlock()
}

// silentLoss lists channels when the stream has been silent since before
// sent while channels live, and says which followed channel the PBX no
// longer lists, "" if none (or if the stream spoke meanwhile).
func (f *Follower) silentLoss(ctx context.Context, s Session, sent int64) string {
	since := f.waitingSince.Load()
	if since == 0 || time.Duration(sent-since) < f.cfg.ProbeInterval {
		return ""
	}
	f.mu.Lock()
	ids := make([]string, 0, len(f.ids))
	for id := range f.ids {
		ids = append(ids, id)
	}
	f.mu.Unlock()
	if len(ids) == 0 {
		return ""
	}
	before := f.reads.Load()
	lctx, cancel := context.WithTimeout(ctx, f.cfg.ProbeTimeout)
	l, err := s.List(lctx)
	cancel()
	if err != nil || f.reads.Load() != before || f.waitingSince.Load() != since {
		return ""
	}
	listed := l.ids()
	slices.Sort(ids)
	for _, id := range ids {
		if !listed[id] && !l.Ended[id] {
			return id
		}
	}
	return ""
}

// probe closes s when the PBX stops answering while the loop waits for it.
// An answer that is late while events flow, or while emit holds the loop
// (nobody reads the answer), proves nothing and is ignored.
func (f *Follower) probe(ctx context.Context, s Session) {
	t := time.NewTicker(f.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before := f.reads.Load()
		sent := time.Now().UnixNano()
		pctx, cancel := context.WithTimeout(ctx, f.cfg.ProbeTimeout)
		err := s.Probe(pctx)
		cancel()
		if err == nil && f.cfg.CheckSilence && ctx.Err() == nil {
			if id := f.silentLoss(ctx, s, sent); id != "" {
				f.log.Warn(f.cfg.PBX+"'s event stream is silent while channels kanca follows ended; dropping the connection", "channel", id)
				s.Close(fmt.Errorf("event stream silent: channel %s ended unreported", id))
				return
			}
		}
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		since := f.waitingSince.Load()
		if f.reads.Load() != before || since == 0 || since > sent {
			continue
		}
		f.log.Warn(f.cfg.PBX+" stopped answering "+f.cfg.Probe+"; dropping the connection", "waited", f.cfg.ProbeTimeout, "err", err)
		s.Close(fmt.Errorf("no answer to %s within %s", f.cfg.Probe, f.cfg.ProbeTimeout))
		return
	}
}

// handle keeps the live-channel memory, settles what a list said about
// in's channel, and emits.
func (f *Follower) handle(in cdr.Input, emit func(cdr.Input)) {
	if in.Kind == cdr.KindPlayed {
		// It names a channel and no more of it: nothing to settle by.
		emit(in)
		return
	}
	if in.Time.After(f.lastTime) {
		f.lastTime = in.Time
	}
	id := in.Channel.ID
	delete(f.unconfirmed, id)
	f.adoptPresupposed(in, emit)
	if p, ok := f.pending[id]; ok {
		delete(f.pending, id)
		f.settle(p, in, emit)
	}
	if at, ok := f.unheard[id]; ok {
		delete(f.unheard, id)
		f.answeredUnheard(id, at, in, emit)
		// Its first event since the gap, unless it was born after the
		// subscription: the tracker knows what it did in between went
		// unheard.
		in.Resumed = in.Kind != cdr.KindCreated
	}
	if in.Kind == cdr.KindHangupRequest || in.Kind == cdr.KindDestroyed {
		f.settleCall(in, emit)
	}
	switch in.Kind {
	case cdr.KindCreated:
		if _, known := f.live[id]; known {
			// Reconciliation adopted it from the channel list moments
			// before its own creation, queued behind the list, arrived.
			return
		}
		f.live[id] = liveChannel{ch: in.Channel, server: in.Server}
		f.track(id, true)
	case cdr.KindDestroyed:
		delete(f.live, id)
		f.track(id, false)
		f.end(id, in.Time)
	default:
		f.refresh(in.Channel)
		if in.Other != nil && f.cfg.OtherIsSnapshot {
			f.refresh(*in.Other)
		}
	}
	emit(in)
}

// endedMemory is how long, in the PBX's time, a channel whose end was
// read is remembered when no list came to forget it (see Follower.ended):
// far longer than any PBX's list lags.
const endedMemory = time.Minute

// minPruneAt is the fewest remembered ends at which the old are pruned.
const minPruneAt = 1024

// end remembers that id's end was read, at t.
func (f *Follower) end(id string, t time.Time) {
	f.ended[id] = t
	if len(f.ended) < f.pruneAt {
		return
	}
	horizon := f.lastTime.Add(-endedMemory)
	for id, at := range f.ended {
		if at.Before(horizon) {
			delete(f.ended, id)
		}
	}
	f.pruneAt = max(minPruneAt, 2*len(f.ended))
}

// forgetEnded forgets the ended channels a list no longer shows: no
// later list can show them again.
func (f *Follower) forgetEnded(present map[string]bool) {
	for id := range f.ended {
		if !present[id] {
			delete(f.ended, id)
		}
	}
}

// adoptPresupposed adopts, before in, the listed channels still held that
// in presupposes: the call a leg born of it belongs to (its linked id),
// the leg a Dial or a bridge names beside it (Other), and the call a
// held change of in's channel names. Each is older than in's channel, and
// known to the PBX before in: adopted after it, in's channel would join
// no call (a callee's Dial, or its answer told by a list, before its
// caller is known to the tracker) or stand for a call of its own.
func (f *Follower) adoptPresupposed(in cdr.Input, emit func(cdr.Input)) {
	id := in.Channel.ID
	var held [3]string
	if in.Kind == cdr.KindCreated {
		held[0] = in.Channel.LinkedID
	}
	if in.Other != nil {
		held[1] = in.Other.ID
	}
	if p, ok := f.pending[id]; ok {
		held[2] = p.lc.ch.LinkedID
	}
	for _, h := range held {
		if h == "" || h == id {
			continue
		}
		if p, ok := f.pending[h]; ok && p.adopt {
			delete(f.pending, h)
			f.settle(p, cdr.Input{Kind: cdr.KindState, Time: in.Time}, emit)
		}
	}
}

func (f *Follower) refresh(ch cdr.Channel) {
	if lc, known := f.live[ch.ID]; known {
		if ch.App == "" {
			// An event that names no application (FreeSWITCH's but
			// CHANNEL_EXECUTE) leaves the channel running what it ran:
			// a list after a gap is compared with that.
			ch.App, ch.AppData = lc.ch.App, lc.ch.AppData
		}
		lc.ch = ch
		f.live[ch.ID] = lc
	}
}

// settle emits what a channel list said about a channel, unless in, the
// channel's first input since the list, says it itself. A KindCreated means
// the channel was born after the subscription: its events tell its whole
// story. Any other input means it is older: it is adopted with the listed
// snapshot. A listed state change is kept only when in is not the change
// itself and shows it had already happened: the same state, or none (a
// channel hanging up), since in the PBX's order a state cannot come before
// the change to it, while another state means the change is on its way.
func (f *Follower) settle(p pendingChannel, in cdr.Input, emit func(cdr.Input)) {
	at := p.placedBy(in)
	switch {
	case p.adopt && in.Kind != cdr.KindCreated:
		// The call's other listed legs are adopted with it, oldest first,
		// whichever of them speaks first: a callee's leg adopted before
		// its caller's would stand for a call of its own.
		group := []pendingChannel{p}
		if linked := p.lc.ch.LinkedID; linked != "" {
			for id, q := range f.pending {
				if q.adopt && q.lc.ch.LinkedID == linked {
					group = append(group, q)
					delete(f.pending, id)
				}
			}
		}
		// A leg bridged with one of them is of their call too, whatever
		// call the PBX names for it (the target of a transfer the gap
		// hid): adopted with them, the bridge joins it to theirs.
		for i := 0; i < len(group); i++ {
			for _, id := range f.bridges[group[i].bridge].ids {
				if q, ok := f.pending[id]; ok && q.adopt {
					group = append(group, q)
					delete(f.pending, id)
				}
			}
		}
		slices.SortFunc(group, func(a, b pendingChannel) int {
			return adoptOrder(a.lc.ch, b.lc.ch)
		})
		// Legs that joined a known call in the gap were dialled by what
		// its first leg runs now: that leg's own change goes first, or
		// they would join the call's step before the gap.
		if q, ok := f.pending[p.lc.ch.LinkedID]; ok && !q.adopt && q.lc.ch.ID != p.lc.ch.ID {
			f.changeNow(q, in, emit)
		}
		for _, q := range group {
			qat := q.placedBy(in)
			f.live[q.lc.ch.ID] = q.lc
			f.track(q.lc.ch.ID, true)
			f.mu.Lock()
			f.stats.Adopted++
			f.mu.Unlock()
			emit(cdr.Input{Kind: cdr.KindCreated, Time: qat, Server: q.lc.server, Channel: q.lc.ch, Adopted: true})
		}
		for _, q := range group {
			f.tellBridge(q.bridge, at, emit)
		}
	case !p.adopt:
		f.listedChange(p, in, at, emit)
		if p.moved {
			f.tellKnownBridge(p.bridge, in, at, emit)
		}
	}
}

// tellKnownBridge tells a bridge of followed channels that the list
// showed, once one of them settles a move the gap hid (an attended
// transfer's consultation bridged to the caller, both moved to
// FreeSWITCH's uuid_bridge); an answer alone is no sign the bridge is
// new (a list may show a bridge whose events are on their way). The
// others' changes are told with it, as
// of in, and then the bridge as of at (tellBridge), before any later
// event of theirs (the caller's end) presupposes it. A bridge kanca
// already heard form is told again; the tracker reads it as what it knew.
func (f *Follower) tellKnownBridge(b string, in cdr.Input, at time.Time, emit func(cdr.Input)) {
	lb, ok := f.bridges[b]
	if !ok || !lb.known {
		return
	}
	if in.Kind == cdr.KindBridgeEnter {
		// The stream tells a bridge itself: the list raced it.
		delete(f.bridges, b)
		return
	}
	for _, id := range lb.ids {
		if q, held := f.pending[id]; held && !q.adopt {
			f.changeNow(q, in, emit)
		}
	}
	f.tellBridge(b, at, emit)
}

// changeNow tells what the list said of q, a known channel's change,
// before its own next input, as of in, another channel's: in presupposes
// it.
func (f *Follower) changeNow(q pendingChannel, in cdr.Input, emit func(cdr.Input)) {
	delete(f.pending, q.lc.ch.ID)
	f.listedChange(q, cdr.Input{}, q.placedBy(in), emit)
}

// placedBy is where what the list said of p is placed when in settles
// it: at the latest time the list can be placed at, no later than in.
func (p pendingChannel) placedBy(in cdr.Input) time.Time {
	if in.Time.Before(p.at) {
		return in.Time
	}
	return p.at
}

// tellBridge tells, once its listed channels are all followed, that they
// talk in bridge b: an adopted KindBridgeEnter for each, oldest first, the
// later ones naming the first as the leg they are bridged to (Other). The
// tracker then joins them as the live bridge would have (a picker or a
// retriever takes the call it talks to) and names the leg bridged with
// the caller as who took the call.
func (f *Follower) tellBridge(b string, at time.Time, emit func(cdr.Input)) {
	lb, ok := f.bridges[b]
	if !ok {
		return
	}
	var members []liveChannel
	for _, id := range lb.ids {
		if q, held := f.pending[id]; held && q.adopt {
			return // told when the last of them is adopted
		}
		if lc, live := f.live[id]; live {
			members = append(members, lc)
		}
	}
	delete(f.bridges, b)
	if lb.at.After(at) && !lb.at.After(f.cfg.Now()) {
		// Formed in the gap after where the adoption is placed (a
		// transfer completed there): the PBX says when.
		at = lb.at
	}
	if len(members) < 2 {
		return
	}
	slices.SortFunc(members, func(a, b liveChannel) int { return adoptOrder(a.ch, b.ch) })
	first := members[0].ch
	for i, m := range members {
		in := cdr.Input{Kind: cdr.KindBridgeEnter, Time: at, Server: m.server, Channel: m.ch, Bridge: b, Adopted: true}
		if i > 0 {
			in.Other = &first
		}
		emit(in)
	}
}

// settleHeld tells what the list said of every channel still held (see
// Config.Settle), calls' first legs first, as if each had spoken now.
func (f *Follower) settleHeld(emit func(cdr.Input)) {
	held := make([]pendingChannel, 0, len(f.pending))
	for _, p := range f.pending {
		held = append(held, p)
	}
	f.settleInOrder(held, cdr.Input{Time: f.lastTime}, emit)
}

// settleInOrder settles the held channels given, in adoption order, as of
// at; one adopted with an earlier one of its call is skipped.
func (f *Follower) settleInOrder(held []pendingChannel, at cdr.Input, emit func(cdr.Input)) {
	slices.SortFunc(held, func(a, b pendingChannel) int { return adoptOrder(a.lc.ch, b.lc.ch) })
	for _, p := range held {
		if _, still := f.pending[p.lc.ch.ID]; !still {
			continue
		}
		delete(f.pending, p.lc.ch.ID)
		f.settle(p, at, emit)
	}
}

// adoptOrder is the order a call's listed legs are adopted in: the leg
// the others are linked to first (their call is its), then by creation.
// A list's creation times may be whole seconds (FreeSWITCH's are), so a
// callee's leg born in the caller's second must not go first for its id.
func adoptOrder(a, b cdr.Channel) int {
	aFirst, bFirst := a.ID == a.LinkedID, b.ID == b.LinkedID
	switch {
	case aFirst && !bFirst:
		return -1
	case bFirst && !aFirst:
		return 1
	}
	return cmp.Or(a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
}

// settleCall settles what a list said of the other legs of in's call,
// still held for their next input, before in ends a leg of it: whatever
// those legs did before the list (a callee's answer) came before this
// end, and the call must know it before it ends.
func (f *Follower) settleCall(in cdr.Input, emit func(cdr.Input)) {
	call := cmp.Or(in.Channel.LinkedID, in.Channel.ID)
	var held []pendingChannel
	for id, p := range f.pending {
		if id != in.Channel.ID && cmp.Or(p.lc.ch.LinkedID, id) == call {
			held = append(held, p)
		}
	}
	f.settleInOrder(held, cdr.Input{Time: in.Time}, emit)
}

// answeredUnheard tells the answer of a listed channel that in, its first
// input since the list, shows up while kanca last knew it otherwise: in
// the PBX's order an answer comes before anything that shows it, so it
// happened in the gap, where the list did not show it. It is placed when
// the PBX said it answered (Channel.Answered, asked when it was
// described), else at the list, or at in when earlier. in itself, an
// answer, tells its own.
func (f *Follower) answeredUnheard(id string, at time.Time, in cdr.Input, emit func(cdr.Input)) {
	lc, known := f.live[id]
	if !known || in.Kind == cdr.KindCreated || in.Kind == cdr.KindState || in.Channel.State != "Up" || lc.ch.State == "Up" {
		return
	}
	if a := lc.ch.Answered; !a.IsZero() && !a.After(in.Time) {
		at = a
	}
	if in.Time.Before(at) {
		at = in.Time
	}
	lc.ch.State = "Up"
	f.live[id] = lc
	emit(cdr.Input{Kind: cdr.KindState, Time: at, Server: lc.server, Channel: lc.ch, Adopted: true})
}

// listedChange emits what a list said changed on a known channel, unless
// in, the channel's next input, says it itself (zero: none has come). A
// dialplan event after the list means the stream carries the listed move
// (that event or one on its way to it).
func (f *Follower) listedChange(p pendingChannel, in cdr.Input, at time.Time, emit func(cdr.Input)) {
	var told []cdr.Input
	if p.changed && in.Kind != cdr.KindState && (in.Channel.State == p.lc.ch.State || in.Channel.State == "") {
		told = append(told, cdr.Input{Kind: cdr.KindState, Time: at, Server: p.lc.server, Channel: p.lc.ch, Adopted: true})
	}
	if p.moved && (in.Kind != cdr.KindDialplan || laterRoute(in.Channel, p.lc.ch)) {
		mat := at
		if !p.movedAt.IsZero() && (in.Time.IsZero() || !p.movedAt.After(in.Time)) {
			mat = p.movedAt
		}
		move := cdr.Input{Kind: cdr.KindDialplan, Time: mat, Server: p.lc.server, Channel: p.lc.ch, Adopted: true}
		if len(told) > 0 && mat.Before(at) {
			// The move made the legs that answered.
			told = append([]cdr.Input{move}, told...)
		} else {
			told = append(told, move)
		}
	}
	for _, t := range told {
		emit(t)
	}
	if len(told) > 0 {
		// What was told is what kanca knows of the channel now.
		f.refresh(p.lc.ch)
	}
}

// laterRoute says whether next, a dialplan event, runs where the leg got
// after it got where listed shows it: the PBX says when each place began
// (Channel.Routed) and next's began later. Its application then is no
// step on the way to the listed one, and the listed move is the gap's
// to tell.
func laterRoute(next, listed cdr.Channel) bool {
	return !listed.Routed.IsZero() && next.Routed.After(listed.Routed)
}

// Received counts one event of type typ read from the PBX ("" when it has
// none); safe from any goroutine.
func (f *Follower) Received(typ string) {
	f.mu.Lock()
	f.stats.Received++
	if _, seen := f.stats.ByType[typ]; seen || len(f.stats.ByType) < maxTypes {
		f.stats.ByType[typ]++
	} else {
		f.stats.ByType["other"]++
	}
	f.mu.Unlock()
}

// Unknown counts an event of a type the PBX does not document.
func (f *Follower) Unknown() {
	f.mu.Lock()
	f.stats.Unknown++
	f.mu.Unlock()
}

// Malformed counts an event skipped because it did not decode.
func (f *Follower) Malformed() {
	f.mu.Lock()
	f.stats.Malformed++
	f.mu.Unlock()
}

// Brief is the part of err an admin acts on ("connection refused",
// "Asterisk refused the ARI credentials (HTTP 401): check ..."): the
// "context: " prefixes the wrappers added are dropped, an error that says
// more than the one it wraps is kept whole.
func Brief(err error) string {
	if err == nil {
		return ""
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return "timed out"
	}
	for {
		u := errors.Unwrap(err)
		if u == nil || !strings.HasSuffix(err.Error(), ": "+u.Error()) {
			return err.Error()
		}
		err = u
	}
}

// roundWait keeps a backoff readable: 1.5s, 12s, not 1.523871233s.
func roundWait(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func (f *Follower) setError(err error) {
	if err == nil {
		return
	}
	f.mu.Lock()
	f.stats.LastError = err.Error()
	f.mu.Unlock()
}

// Stats returns a copy of the counters; safe from any goroutine.
func (f *Follower) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.ByType = make(map[string]uint64, len(f.stats.ByType))
	for k, v := range f.stats.ByType {
		st.ByType[k] = v
	}
	return st
}

// Excerpt is the start of a malformed event, safe to log.
func Excerpt(data []byte) string {
	if len(data) > excerptLen {
		data = data[:excerptLen]
	}
	return strings.ToValidUTF8(string(data), string(utf8.RuneError))
}
