package esl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
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
	// ReorderWait is how long an event may be held back behind a gap in
	// Event-Sequence, for the events with a lower one still on their way.
	// Default 3 ms: the socket swaps events raised in the same instant,
	// and the next sequence is released without waiting (see Order).
	ReorderWait time.Duration
	// Relist is how long after every (re)connect the channel list is
	// taken again (see follow.Config.Relist): FreeSWITCH's list is its
	// core database, written behind the events, so the first list can
	// still show channels whose end came before the subscription and miss
	// ones born just before it. Default 1 s; negative turns it off.
	Relist time.Duration
	// OnReconcile, if set, is called after every (re)connect's
	// reconciliation; see follow.Config.
	OnReconcile func(follow.Gap)
	// DIDVariables are the channel variables read from a channel adopted
	// mid-call for the number its call arrived on (cdr.Config's); default
	// cdr.DefaultConfig's.
	DIDVariables []string
	// Now is the clock read where the PBX does not say its own (see
	// follow.Config.Now); default time.Now.
	Now func() time.Time
}

// Backoff shapes the waits between connection attempts (see follow.Backoff).
type Backoff = follow.Backoff

const (
	// DefaultAddr is mod_event_socket's own default.
	DefaultAddr          = "127.0.0.1:8021"
	defaultTimeout       = 10 * time.Second
	defaultProbeInterval = 30 * time.Second
	defaultReorderWait   = 3 * time.Millisecond
	defaultRelist        = time.Second

	// maxEarly bounds the event bytes held while waiting for the channel
	// list after a (re)connect.
	maxEarly = 64 << 20
)

// ErrNotConnected is returned by a command sent while the Source has no
// live connection (before the first, or between a drop and the reconnect).
var ErrNotConnected = errors.New("not connected to FreeSWITCH")

// Subscription is what the Source asks the socket for ("event json" and
// these words): every event DecodeFields maps to a tracker input, and
// after CUSTOM the subclasses it maps. A list rather than "ALL" keeps the
// socket from sending the several times more events kanca drops
// (CHANNEL_STATE, CODEC, CALL_UPDATE, HEARTBEAT, PRESENCE_IN, RE_SCHEDULE,
// and an API event for each of its own probes).
var Subscription = []string{
	"CHANNEL_CREATE", "CHANNEL_ORIGINATE", "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA",
	"CHANNEL_ANSWER", "CHANNEL_EXECUTE", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "DTMF",
	"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY", "RECORD_START",
	"CUSTOM", "menu::enter", "callcenter::info",
	"spandsp::rxfaxnegociateresult", "spandsp::rxfaxpageresult", "spandsp::rxfaxresult",
}

// Source follows one FreeSWITCH through its event socket and turns its
// events into tracker inputs: the event socket adapter of a
// follow.Follower.
type Source struct {
	f    *follow.Follower
	cfg  Config
	log  *slog.Logger
	conn atomic.Pointer[Conn] // the subscribed connection, nil between sessions

	// Owned by the Run goroutine: kept across sessions, so a reconnect to
	// the same FreeSWITCH (same Core-UUID) goes on where it left.
	order *Order[Fields]
}

// Stats is a copy of the Source's counters, for metrics.
type Stats struct {
	Events    uint64            // events received
	ByName    map[string]uint64 // per Event-Name; CUSTOM ones as "CUSTOM subclass"
	Malformed uint64            // events skipped because they did not decode
	follow.Link
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
	if cfg.Relist == 0 {
		cfg.Relist = defaultRelist
	}
	if cfg.DIDVariables == nil {
		cfg.DIDVariables = cdr.DefaultConfig().DIDVariables
	}
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	s := &Source{
		cfg:   cfg,
		log:   cfg.Logger.With("source", "esl"),
		order: NewOrder[Fields](DefaultWindow),
	}
	s.f = follow.New(follow.Config{
		Name: "esl", PBX: "FreeSWITCH", Logger: s.log, Backoff: cfg.Backoff,
		ProbeInterval: cfg.ProbeInterval, ProbeTimeout: cfg.Timeout, Probe: "api status",
		Refusals:       []error{ErrUnauthorized, ErrRejected},
		ConnectedAttrs: []any{"addr", cfg.Addr},
		OnReconcile:    cfg.OnReconcile,
		Relist:         cfg.Relist,
		Now:            cfg.Now,
	}, s.dial)
	return s, nil
}

// CheckConfig reports what makes cfg unusable, as New does, without
// filling defaults: an address that is not host:port, or a password that
// is empty or cannot be sent.
func CheckConfig(cfg Config) error {
	addr := cfg.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil && strings.Count(addr, ":") > 1 && !strings.HasPrefix(addr, "[") {
		// An IPv6 address (FreeSWITCH's stock listen-ip is ::) needs its
		// brackets before the port.
		i := strings.LastIndexByte(addr, ':')
		return fmt.Errorf("esl: address %q: write an IPv6 address in brackets, [%s]:%s", addr, addr[:i], addr[i+1:])
	}
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("esl: address %q: want host:port (event_socket.conf.xml listen-ip:listen-port)", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("esl: address %q: port %q is no port number (1-65535)", addr, port)
	}
	if cfg.Password == "" {
		return errors.New("esl: no password: set KANCA_ESL_PASSWORD or --esl-password-file to event_socket.conf.xml's password")
	}
	if strings.ContainsAny(cfg.Password, "\r\n") {
		return errors.New("esl: the password cannot hold a line break")
	}
	return nil
}

// Seed tells the Source, before Run, which channels kanca followed when it
// last stopped (see follow.Follower.Seed).
func (s *Source) Seed(live []cdr.Input) { s.f.Seed(live) }

// Run follows FreeSWITCH until ctx ends, calling emit with every input in
// Event-Sequence order (see follow.Follower.Run). It reconnects, with
// backoff, after every failure, a refused password included.
func (s *Source) Run(ctx context.Context, emit func(cdr.Input)) error { return s.f.Run(ctx, emit) }

// Addr is the event socket address the Source connects to.
func (s *Source) Addr() string { return s.cfg.Addr }

// Stats returns a copy of the counters; safe from any goroutine.
func (s *Source) Stats() Stats {
	st := s.f.Stats()
	return Stats{Events: st.Received, ByName: st.ByType, Malformed: st.Malformed, Link: st.Link}
}

// API runs an API command ("uuid_kill UUID", "uuid_broadcast UUID
// playback::FILE aleg") on the connection the Source follows FreeSWITCH
// with, and returns its answer (see Conn.API); within Config.Timeout, or
// ctx's deadline if sooner. It fails with ErrNotConnected between
// connections.
func (s *Source) API(ctx context.Context, cmd string) (string, error) {
	c := s.conn.Load()
	if c == nil {
		return "", fmt.Errorf("api %s: %w", cmd, ErrNotConnected)
	}
	return c.API(ctx, cmd)
}

// BgAPI starts an API command in the background ("originate ...") on the
// connection the Source follows FreeSWITCH with and returns its Job-UUID
// once FreeSWITCH took it (see Conn.BgAPI). It fails with ErrNotConnected
// between connections.
func (s *Source) BgAPI(ctx context.Context, cmd string) (string, error) {
	c := s.conn.Load()
	if c == nil {
		return "", fmt.Errorf("bgapi %s: %w", cmd, ErrNotConnected)
	}
	return c.BgAPI(ctx, cmd)
}

// dial connects, logs in and subscribes.
func (s *Source) dial(ctx context.Context) (follow.Session, error) {
	c, err := Dial(ctx, s.cfg.Addr, s.cfg.Password, s.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	if err := c.Subscribe(ctx, Subscription...); err != nil {
		c.Close()
		return nil, fmt.Errorf("event socket %s: %w", s.cfg.Addr, err)
	}
	hold := time.NewTimer(time.Hour)
	hold.Stop()
	e := &session{src: s, c: c, hold: hold}
	s.conn.Store(c)
	return e, nil
}

// session is one subscribed connection.
type session struct {
	src     *Source
	c       *Conn
	early   []Fields // events read while waiting for the channel list
	started bool     // early was handed over
	hold    *time.Timer
	armed   bool // hold runs: held events are due when it fires
	// wake makes Next return once when the list is due again, so a quiet
	// switch is listed again all the same.
	wake <-chan time.Time
	// pairs are the latest list's bridged pairs, by their B leg, for
	// Describe.
	pairs map[string]callPair
}

// List asks for the live channels and collects the events that arrive
// before the answer: the socket answers on the event stream.
func (e *session) List(ctx context.Context) (follow.Listing, error) {
	rows, early, err := e.list(ctx)
	var pairs []callPair
	if err == nil && len(rows) > 0 {
		var more []Fields
		pairs, more, err = e.calls(ctx)
		early = append(early, more...)
	}
	// A list taken again mid-session hands its early events over first,
	// as the first does; so does a failed one: what was read is real, and
	// Next hands it over before it says the connection ended.
	e.early, e.started = append(e.early, early...), false
	if err != nil {
		return follow.Listing{}, fmt.Errorf("event socket %s: reconcile: %w", e.src.cfg.Addr, err)
	}
	e.pairs = map[string]callPair{}
	for _, p := range pairs {
		e.pairs[p.B] = p
	}
	l := follow.Listing{Coarse: true, Ended: map[string]bool{}}
	ended := func(f Fields) {
		switch f["event-name"] {
		case "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY":
			l.Ended[f["unique-id"]] = true
		}
	}
	for _, f := range early {
		ended(f)
	}
	// So are the ends read already and held back behind a gap in
	// Event-Sequence (a list taken again mid-session): they are handed
	// over next.
	e.src.order.Held(ended)
	bridge := map[string]string{}
	bridgedAt := map[string]time.Time{}
	for _, p := range pairs {
		// The pair's A leg names the bridge; both are listed as its.
		bridge[p.A], bridge[p.B] = p.A, p.A
		bridgedAt[p.A], bridgedAt[p.B] = epoch(p.Created), epoch(p.Created)
	}
	for _, r := range rows {
		l.Channels = append(l.Channels, follow.Listed{Channel: r.channel(), Server: r.Hostname, Bridge: bridge[r.UUID], BridgedAt: bridgedAt[r.UUID]})
	}
	return l, nil
}

func (e *session) list(ctx context.Context) ([]row, []Fields, error) {
	body, early, err := e.collect(ctx, "show channels as json")
	if err != nil {
		// What was read while waiting is real all the same.
		return nil, early, err
	}
	rows, err := parseChannels(body)
	return rows, early, err
}

// collect runs an API command and reads the events that arrive before
// its answer: the socket answers on the event stream, behind them.
func (e *session) collect(ctx context.Context, cmd string) (string, []Fields, error) {
	type answer struct {
		body string
		err  error
	}
	got := make(chan answer, 1)
	lctx, cancel := context.WithTimeout(ctx, e.src.cfg.Timeout)
	defer cancel()
	go func() {
		body, err := e.c.API(lctx, cmd)
		got <- answer{body, err}
	}()
	var early []Fields
	size := 0
	take := func(raw []byte) error {
		size += len(raw)
		if size > maxEarly {
			return fmt.Errorf("over %d bytes of events before the answer to %s", maxEarly, cmd)
		}
		if f, ok := e.src.parse(raw); ok {
			early = append(early, f)
		}
		return nil
	}
	for {
		select {
		case a := <-got:
			// The reader hands the answer over once every event before it
			// is queued, and the select may take the answer first: those
			// events came before it, and are early too.
			for {
				select {
				case raw, ok := <-e.c.Events():
					if !ok {
						return a.body, early, a.err
					}
					if err := take(raw); err != nil {
						return "", early, err
					}
					continue
				default:
				}
				return a.body, early, a.err
			}
		case raw, ok := <-e.c.Events():
			if !ok {
				// What was read is real: the caller may still hand it over.
				return "", early, e.c.Err()
			}
			if err := take(raw); err != nil {
				return "", early, err
			}
		}
	}
}

// Next hands over the events read before the list first, then reads one
// event, or releases those the reorder buffer held long enough. When the
// connection ends, what the buffer holds goes out with the error: events
// received are real whatever happens next.
func (e *session) Next(ctx context.Context, dst []cdr.Input) ([]cdr.Input, error) {
	if !e.started {
		e.started = true
		for _, f := range e.early {
			dst = e.src.receive(f, dst)
		}
		e.early = nil
		e.arm()
		if e.wake == nil && e.src.cfg.Relist > 0 {
			e.wake = time.After(e.src.cfg.Relist)
		}
		return dst, nil
	}
	var due <-chan time.Time
	if e.armed {
		due = e.hold.C
	}
	select {
	case raw, ok := <-e.c.Events():
		if !ok {
			return e.src.flush(dst), fmt.Errorf("event socket %s: %w", e.src.cfg.Addr, e.c.Err())
		}
		if f, ok := e.src.parse(raw); ok {
			dst = e.src.receive(f, dst)
		}
	case <-e.wake:
		e.wake = nil
	case <-due:
		e.armed = false
		for _, f := range e.src.order.Release(time.Now().Add(-e.src.cfg.ReorderWait)) {
			dst = e.src.handle(f, dst)
		}
	case <-ctx.Done():
		return e.src.flush(dst), ctx.Err()
	}
	e.arm()
	return dst, nil
}

// arm starts the hold timer when events wait in the reorder buffer.
func (e *session) arm() {
	if !e.armed && e.src.order.Len() > 0 {
		e.hold.Reset(e.src.cfg.ReorderWait)
		e.armed = true
	}
}

// Probe asks "api status": the answer comes on the event stream, behind
// the events, so it proves the reader is fed too.
func (e *session) Probe(ctx context.Context) error {
	_, err := e.c.API(ctx, "status")
	return err
}

func (e *session) Close(cause error) {
	e.src.conn.CompareAndSwap(e.c, nil)
	if cause != nil {
		e.c.fail(cause)
	}
	e.c.Close()
	e.hold.Stop()
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
	s.f.Received(name)
	if err != nil {
		s.f.Malformed()
		s.log.Warn("skipped a malformed FreeSWITCH event", "err", err, "event", follow.Excerpt(raw))
		return nil, false
	}
	return f, true
}

// receive puts an event through the reorder buffer and decodes what it
// releases. An event without a sequence is handled where it stands, after
// everything held, as Reorder does.
func (s *Source) receive(f Fields, dst []cdr.Input) []cdr.Input {
	seq, ok := f.Sequence()
	if !ok {
		return s.handle(f, s.flush(dst))
	}
	for _, g := range s.order.Push(f["core-uuid"], seq, time.Now(), f) {
		dst = s.handle(g, dst)
	}
	return dst
}

func (s *Source) flush(dst []cdr.Input) []cdr.Input {
	for _, f := range s.order.Flush() {
		dst = s.handle(f, dst)
	}
	return dst
}

// handle decodes one event in sequence order.
func (s *Source) handle(f Fields, dst []cdr.Input) []cdr.Input {
	in, ok, err := DecodeFields(f)
	if err != nil {
		s.f.Malformed()
		s.log.Warn("skipped a malformed FreeSWITCH event", "name", f["event-name"], "err", err)
		return dst
	}
	if ok {
		dst = append(dst, in)
	}
	return dst
}
