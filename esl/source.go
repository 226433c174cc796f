package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/internal/backoff"
)

// Config says where FreeSWITCH's event socket is and how to behave when it
// goes away.
type Config struct {
	// Addr is event_socket.conf.xml's listen-ip:listen-port. Default
	// 127.0.0.1:8021.
	Addr string
	// Password is event_socket.conf.xml's password; never logged.
	Password string
	Logger   *slog.Logger // default slog.Default()

	Backoff Backoff
	// Timeout bounds the connection and login, every command, and the wait
	// for the liveness probe's answer. Default 10 s.
	Timeout time.Duration
	// ProbeInterval is how often the connection is probed with "api
	// status", so a FreeSWITCH that vanished without closing TCP, or hangs,
	// is noticed. Default 30 s; negative turns the probe off.
	ProbeInterval time.Duration
	// ReorderWait is how long an event may be held back for events with a
	// lower Event-Sequence still on their way. Default 100 ms.
	ReorderWait time.Duration
}

// Backoff shapes the waits between connection attempts, as ari.Backoff
// does: Initial, doubling up to Max, each spread by ±Jitter.
type Backoff struct {
	Initial time.Duration // default 500 ms
	Max     time.Duration // default 30 s
	Jitter  float64       // fraction of each wait, default 0.2
}

func (b Backoff) wait(attempt int, jitter func() float64) time.Duration {
	return backoff.Wait(b.Initial, b.Max, b.Jitter, attempt, jitter())
}

const (
	// DefaultAddr is mod_event_socket's own default.
	DefaultAddr          = "127.0.0.1:8021"
	defaultTimeout       = 10 * time.Second
	defaultProbeInterval = 30 * time.Second
	defaultReorderWait   = 100 * time.Millisecond

	// maxNames bounds Stats.ByName against a peer inventing event names.
	maxNames = 128
	// maxEarly bounds the event bytes held while waiting for the channel
	// list after a (re)connect.
	maxEarly = 64 << 20
	// excerptLen is how much of a malformed event is logged.
	excerptLen = 160
)

// Subscription is what the Source asks the socket for ("event json" and
// these words): every event DecodeFields maps to a tracker input, and
// after CUSTOM the subclasses it maps. A list rather than "ALL" keeps the
// socket from sending the several times more events kanca drops
// (CHANNEL_STATE, CODEC, CALL_UPDATE, HEARTBEAT, PRESENCE_IN, RE_SCHEDULE,
// and an API event for each of its own probes).
var Subscription = []string{
	"CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
	"CHANNEL_ANSWER", "CHANNEL_EXECUTE", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "DTMF",
	"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY",
	"CUSTOM", "menu::enter", "callcenter::info",
	"spandsp::rxfaxnegociateresult", "spandsp::rxfaxpageresult", "spandsp::rxfaxresult",
}

// Source follows one FreeSWITCH through its event socket and turns its
// events into tracker inputs.
type Source struct {
	cfg     Config
	log     *slog.Logger
	jitter  func() float64 // in [0,1); replaceable by tests
	running atomic.Bool

	// Owned by the Run goroutine.
	order    *Order[Fields]
	live     map[string]liveChannel
	pending  map[string]pendingChannel
	lastTime time.Time // latest event time handled: when the connection dropped, at best
	everUp   bool

	mu    sync.Mutex
	stats Stats
}

// liveChannel is a channel seen created (or adopted) and not yet
// destroyed, with its latest snapshot and the switch that reported it.
type liveChannel struct {
	ch     cdr.Channel
	server string
}

// pendingChannel is what the channel list said that the stream may still
// be about to say itself; the channel's next event settles it.
type pendingChannel struct {
	lc    liveChannel
	adopt bool      // unknown channel: adopt it; else it was answered in the gap
	at    time.Time // the latest time the list can be placed at
}

// Stats is a copy of the Source's counters, for metrics.
type Stats struct {
	Events     uint64            // events received
	ByName     map[string]uint64 // per Event-Name; CUSTOM ones as "CUSTOM subclass"
	Malformed  uint64            // events skipped because they did not decode
	Reconnects uint64            // successful connections after the first
	Connected  bool
	LastError  string // the latest connection or read error, "" if none yet
	Gone       uint64 // channels reported gone by reconciliation
	Adopted    uint64 // channels adopted by reconciliation
}

// New checks cfg and fills its defaults. It does not connect.
func New(cfg Config) (*Source, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.ProbeInterval == 0 {
		cfg.ProbeInterval = defaultProbeInterval
	}
	if cfg.ReorderWait <= 0 {
		cfg.ReorderWait = defaultReorderWait
	}
	if cfg.Backoff.Initial <= 0 {
		cfg.Backoff.Initial = 500 * time.Millisecond
	}
	if cfg.Backoff.Max <= 0 {
		cfg.Backoff.Max = 30 * time.Second
	}
	if cfg.Backoff.Max < cfg.Backoff.Initial {
		cfg.Backoff.Max = cfg.Backoff.Initial
	}
	if cfg.Backoff.Jitter <= 0 || cfg.Backoff.Jitter >= 1 {
		cfg.Backoff.Jitter = 0.2
	}
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	return &Source{
		cfg:     cfg,
		log:     cfg.Logger.With("source", "esl"),
		jitter:  rand.Float64,
		order:   NewOrder[Fields](DefaultWindow),
		live:    make(map[string]liveChannel),
		pending: make(map[string]pendingChannel),
		stats:   Stats{ByName: make(map[string]uint64)},
	}, nil
}

// CheckConfig reports what makes cfg unusable, as New does, without
// filling defaults: an address that is not host:port, or a password that
// is empty or cannot be sent.
func CheckConfig(cfg Config) error {
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	if host, port, err := net.SplitHostPort(addr); err != nil || host == "" || port == "" {
		return fmt.Errorf("esl: address %q: want host:port (event_socket.conf.xml listen-ip:listen-port)", addr)
	}
	if cfg.Password == "" {
		return errors.New("esl: no password: the event socket needs event_socket.conf.xml's password")
	}
	if strings.ContainsAny(cfg.Password, "\r\n") {
		return errors.New("esl: the password cannot hold a line break")
	}
	return nil
}

// Seed tells the Source, before Run, which channels kanca followed when it
// last stopped, each by its latest input: the first reconciliation reports
// those FreeSWITCH no longer lists as gone, at the latest time seeded. It
// must not be called while Run runs.
func (s *Source) Seed(live []cdr.Input) {
	if s.running.Load() {
		panic("esl: Seed called while the Source runs")
	}
	for _, in := range live {
		s.live[in.Channel.ID] = liveChannel{ch: in.Channel, server: in.Server}
		if in.Time.After(s.lastTime) {
			s.lastTime = in.Time
		}
	}
}

// Addr is the event socket address the Source connects to.
func (s *Source) Addr() string { return s.cfg.Addr }

// Run connects and calls emit with every input, synchronously and in
// Event-Sequence order, from the calling goroutine: a slow emit slows
// reading (TCP back-pressure to FreeSWITCH) instead of dropping events.
// After each (re)connect the reconciliation inputs (KindGone, and the
// KindCreated and KindState held for the channels' next events) come before
// any event of the new connection. Run reconnects, with backoff, after
// every failure, a refused password included, and returns nil when ctx
// ends. It returns an error only if misused.
func (s *Source) Run(ctx context.Context, emit func(cdr.Input)) error {
	if emit == nil {
		return errors.New("esl: Run needs an emit function")
	}
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("esl: Source is already running")
	}
	defer s.running.Store(false)

	attempt := 0
	for {
		up, err := s.session(ctx, emit)
		if ctx.Err() != nil {
			return nil
		}
		if up {
			attempt = 0
		}
		s.setError(err)
		wait := s.cfg.Backoff.wait(attempt, s.jitter)
		attempt++
		switch {
		case up:
			s.log.Warn("disconnected from FreeSWITCH", "err", err, "retry_in", wait)
		case errors.Is(err, ErrUnauthorized), errors.Is(err, ErrRejected):
			s.log.Error("cannot connect to FreeSWITCH", "err", err, "retry_in", wait)
		default:
			s.log.Warn("cannot connect to FreeSWITCH", "err", err, "retry_in", wait)
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

// session is one connection: dial, subscribe, reconcile, read until it
// fails. up says whether it got as far as reconciling, which resets the
// backoff.
func (s *Source) session(ctx context.Context, emit func(cdr.Input)) (up bool, err error) {
	c, err := Dial(ctx, s.cfg.Addr, s.cfg.Password, s.cfg.Timeout)
	if err != nil {
		return false, err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	err = c.Subscribe(cctx, Subscription...)
	cancel()
	if err != nil {
		return false, fmt.Errorf("event socket %s: %w", s.cfg.Addr, err)
	}

	// The channel list is asked for after the subscription exists, so
	// every change after the list is also in the stream: nothing falls
	// between. Events that come before the list's answer wait for it.
	rows, early, err := s.list(ctx, c)
	if err != nil {
		return false, fmt.Errorf("event socket %s: reconcile: %w", s.cfg.Addr, err)
	}
	s.reconcile(rows, early, emit)

	s.mu.Lock()
	s.stats.Connected = true
	if s.everUp {
		s.stats.Reconnects++
	}
	s.mu.Unlock()
	if s.everUp {
		s.log.Info("reconnected to FreeSWITCH", "addr", s.cfg.Addr)
	} else {
		s.log.Info("connected to FreeSWITCH", "addr", s.cfg.Addr)
	}
	s.everUp = true
	defer func() {
		s.mu.Lock()
		s.stats.Connected = false
		s.mu.Unlock()
	}()

	if s.cfg.ProbeInterval > 0 {
		pctx, cancel := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			s.probe(pctx, c)
		}()
		// The prober never outlives its connection.
		defer func() {
			cancel()
			<-stopped
		}()
	}

	// Events received are real whatever happens next: what the reorder
	// buffer holds goes out before the next connection reconciles.
	defer s.flush(emit)
	for _, f := range early {
		s.receive(f, emit)
	}
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	defer hold.Stop()
	armed := false
	arm := func() {
		if !armed && s.order.Len() > 0 {
			hold.Reset(s.cfg.ReorderWait)
			armed = true
		}
	}
	arm()
	for {
		var due <-chan time.Time
		if armed {
			due = hold.C
		}
		select {
		case raw, ok := <-c.Events():
			if !ok {
				return true, fmt.Errorf("event socket %s: %w", s.cfg.Addr, c.Err())
			}
			if f, ok := s.parse(raw); ok {
				s.receive(f, emit)
			}
		case <-due:
			armed = false
			for _, f := range s.order.Release(time.Now().Add(-s.cfg.ReorderWait)) {
				s.handle(f, emit)
			}
		case <-ctx.Done():
			return true, ctx.Err()
		}
		arm()
	}
}

// list asks for the live channels and collects the events that arrive
// before the answer.
func (s *Source) list(ctx context.Context, c *Conn) ([]row, []Fields, error) {
	type answer struct {
		body string
		err  error
	}
	got := make(chan answer, 1)
	lctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	go func() {
		body, err := c.API(lctx, "show channels as json")
		got <- answer{body, err}
	}()
	var early []Fields
	size := 0
	for {
		select {
		case a := <-got:
			if a.err != nil {
				return nil, nil, a.err
			}
			rows, err := parseChannels(a.body)
			return rows, early, err
		case raw, ok := <-c.Events():
			if !ok {
				return nil, nil, c.Err()
			}
			size += len(raw)
			if size > maxEarly {
				return nil, nil, fmt.Errorf("over %d bytes of events before the channel list", maxEarly)
			}
			if f, ok := s.parse(raw); ok {
				early = append(early, f)
			}
		}
	}
}

// probe closes c when FreeSWITCH stops answering "api status" while the
// reader waits for it. An answer that is late while events flow, or while
// emit holds the reader (nobody reads the answer), proves nothing.
func (s *Source) probe(ctx context.Context, c *Conn) {
	t := time.NewTicker(s.cfg.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.Done():
			return
		case <-t.C:
		}
		before := c.read.Load()
		sent := time.Now().UnixNano()
		pctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		_, err := c.API(pctx, "status")
		cancel()
		if err == nil || ctx.Err() != nil || c.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		since := c.waitingSince.Load()
		if c.read.Load() != before || since == 0 || since > sent {
			continue
		}
		s.log.Warn("FreeSWITCH stopped answering; dropping the connection", "waited", s.cfg.Timeout)
		c.fail(fmt.Errorf("no answer to api status within %s", s.cfg.Timeout))
		return
	}
}

// parse reads one event and counts it; a malformed one is logged and
// dropped.
func (s *Source) parse(raw []byte) (Fields, bool) {
	f, err := ParseJSON(raw)
	name := ""
	if err == nil {
		name = f["event-name"]
		if name == "CUSTOM" {
			name += " " + f["event-subclass"]
		}
	}
	s.mu.Lock()
	s.stats.Events++
	if _, seen := s.stats.ByName[name]; seen || len(s.stats.ByName) < maxNames {
		s.stats.ByName[name]++
	} else {
		s.stats.ByName["other"]++
	}
	if err != nil {
		s.stats.Malformed++
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("skipped a malformed FreeSWITCH event", "err", err, "event", excerpt(raw))
		return nil, false
	}
	return f, true
}

// receive puts an event through the reorder buffer and handles what it
// releases. An event without a sequence is handled where it stands, after
// everything held, as Reorder does.
func (s *Source) receive(f Fields, emit func(cdr.Input)) {
	seq, ok := f.Sequence()
	if !ok {
		s.flush(emit)
		s.handle(f, emit)
		return
	}
	for _, g := range s.order.Push(f["core-uuid"], seq, time.Now(), f) {
		s.handle(g, emit)
	}
}

func (s *Source) flush(emit func(cdr.Input)) {
	for _, f := range s.order.Flush() {
		s.handle(f, emit)
	}
}

// handle decodes one event in sequence order, keeps the live-channel
// memory and emits.
func (s *Source) handle(f Fields, emit func(cdr.Input)) {
	in, ok, err := DecodeFields(f)
	if err != nil {
		s.mu.Lock()
		s.stats.Malformed++
		s.mu.Unlock()
		s.log.Warn("skipped a malformed FreeSWITCH event", "name", f["event-name"], "err", err)
		return
	}
	if !ok {
		return
	}
	if in.Time.After(s.lastTime) {
		s.lastTime = in.Time
	}
	id := in.Channel.ID
	if p, ok := s.pending[id]; ok {
		delete(s.pending, id)
		s.settle(p, in, emit)
	}
	switch in.Kind {
	case cdr.KindCreated:
		if _, known := s.live[id]; known {
			return
		}
		s.live[id] = liveChannel{ch: in.Channel, server: in.Server}
	case cdr.KindDestroyed:
		delete(s.live, id)
	default:
		// in.Other is only the A-leg's id, not a snapshot: it refreshes
		// nothing.
		if lc, known := s.live[id]; known {
			lc.ch = in.Channel
			s.live[id] = lc
		}
	}
	emit(in)
}

// settle emits what the channel list said about a channel, unless in, the
// channel's first event since the list, says it itself. A CHANNEL_CREATE
// means the channel was born after the subscription: its events tell its
// whole story. Any other event means it is older: it is adopted with the
// listed snapshot. A listed answer is kept only when in is not the answer
// itself and shows the channel up or hanging up (Answer-State "hangup",
// no state): in sequence order neither can come before its answer, while
// an earlier state means the answer is still on its way.
func (s *Source) settle(p pendingChannel, in cdr.Input, emit func(cdr.Input)) {
	at := p.at
	if in.Time.Before(at) {
		at = in.Time
	}
	switch {
	case p.adopt && in.Kind != cdr.KindCreated:
		s.live[p.lc.ch.ID] = p.lc
		s.mu.Lock()
		s.stats.Adopted++
		s.mu.Unlock()
		emit(cdr.Input{Kind: cdr.KindCreated, Time: at, Server: p.lc.server, Channel: p.lc.ch})
	case !p.adopt && in.Kind != cdr.KindState && (in.Channel.State == p.lc.ch.State || in.Channel.State == ""):
		emit(cdr.Input{Kind: cdr.KindState, Time: at, Server: p.lc.server, Channel: p.lc.ch})
	}
}

func excerpt(data []byte) string {
	if len(data) > excerptLen {
		data = data[:excerptLen]
	}
	return strings.ToValidUTF8(string(data), string(utf8.RuneError))
}

func (s *Source) setError(err error) {
	if err == nil {
		return
	}
	s.mu.Lock()
	s.stats.LastError = err.Error()
	s.mu.Unlock()
}

// Stats returns a copy of the counters; safe from any goroutine.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.ByName = make(map[string]uint64, len(s.stats.ByName))
	for k, v := range s.stats.ByName {
		st.ByName[k] = v
	}
	return st
}
