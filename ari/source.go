package ari

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/internal/backoff"
)

// Config says where Asterisk is and how to behave when it goes away.
type Config struct {
	// URL is Asterisk's HTTP server (http.conf), with its prefix path if one
	// is set; http, https, ws or wss. Default http://127.0.0.1:8088.
	URL string
	// User and Password are an ari.conf user; never logged.
	User, Password string
	// App is the ARI application name kanca subscribes as. Default "kanca".
	App    string
	Logger *slog.Logger // default slog.Default()

	Backoff Backoff
	// HTTPTimeout bounds every REST call, the WebSocket handshake and the
	// wait for a keepalive pong. Default 10 s.
	HTTPTimeout time.Duration
	// PingInterval is how often an idle connection is probed, so a peer that
	// vanished without closing TCP is noticed. Default 30 s; negative turns
	// the probe off.
	PingInterval time.Duration
}

// Backoff shapes the waits between connection attempts: Initial, doubling
// up to Max, each spread by ±Jitter so a fleet of kanca instances does not
// reconnect in step after an Asterisk restart.
type Backoff struct {
	Initial time.Duration // default 500 ms
	Max     time.Duration // default 30 s
	Jitter  float64       // fraction of each wait, default 0.2
}

const (
	defaultURL          = "http://127.0.0.1:8088"
	defaultApp          = "kanca"
	defaultHTTPTimeout  = 10 * time.Second
	defaultPingInterval = 30 * time.Second

	// maxFrame bounds one WebSocket message; the library's 32 KiB default
	// is below what a bridge with many channels or a snapshot with many
	// channelvars can reach.
	maxFrame = 8 << 20
	// maxBody bounds a REST answer: GET /ari/channels on a busy PBX.
	maxBody = 64 << 20
	// maxTypes bounds Stats.ByType against a peer inventing event types.
	maxTypes = 128
	// excerptLen is how much of a malformed frame is logged.
	excerptLen = 160
)

// ErrUnauthorized is wrapped when Asterisk answers 401: the user or password
// does not match ari.conf. The Source keeps retrying, so an operator can fix
// ari.conf and reload without restarting kanca.
var ErrUnauthorized = errors.New("Asterisk refused the ARI credentials")

// Source follows one Asterisk through ARI and turns its events into tracker
// inputs.
type Source struct {
	cfg         Config
	log         *slog.Logger
	eventsURL   string
	restURL     string // base for REST paths, ending in /ari
	auth        string // the Authorization header value
	client      *http.Client
	jitter      func() float64 // in [0,1); replaceable by tests
	running     atomic.Bool
	framesRead  atomic.Uint64 // for the keepalive's liveness check
	readWaiting atomic.Bool   // the loop is blocked reading, not emitting

	// Owned by the Run goroutine.
	live     map[string]liveChannel
	pending  map[string]pendingChannel
	lastTime time.Time // latest event time seen: when the connection dropped, at best
	everUp   bool

	mu    sync.Mutex
	stats Stats
}

// liveChannel is a channel seen created (or adopted) and not yet destroyed,
// with its latest snapshot and the server that reported it.
type liveChannel struct {
	ch     cdr.Channel
	server string
}

// pendingChannel is what a channel list said that the stream may still be
// about to say itself: frames queued behind the list describe the same
// moments more precisely. It is settled by the channel's next frame.
type pendingChannel struct {
	lc    liveChannel
	adopt bool      // unknown channel: adopt it; else its state changed
	at    time.Time // Asterisk's clock at the list
}

// Stats is a copy of the Source's counters, for metrics.
type Stats struct {
	Frames     uint64            // frames received
	ByType     map[string]uint64 // frames per ARI event type ("" when a frame has none)
	Unknown    uint64            // frames of types ARI does not document
	Malformed  uint64            // frames skipped because they did not decode
	Reconnects uint64            // successful connections after the first
	Connected  bool
	LastError  string // the latest connection or read error, "" if none yet
	Gone       uint64 // channels reported gone by reconciliation
	Adopted    uint64 // channels adopted by reconciliation
}

// New checks cfg and fills its defaults. It does not connect.
func New(cfg Config) (*Source, error) {
	if cfg.URL == "" {
		cfg.URL = defaultURL
	}
	if cfg.App == "" {
		cfg.App = defaultApp
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPTimeout <= 0 {
		cfg.HTTPTimeout = defaultHTTPTimeout
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = defaultPingInterval
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
	if cfg.User == "" {
		return nil, errors.New("ari: no user: ARI needs an ari.conf user")
	}

	u, err := url.Parse(cfg.URL)
	if err != nil {
		// url.Error quotes the input, which could hold a password.
		return nil, errors.New("ari: URL does not parse")
	}
	if u.User != nil {
		return nil, errors.New("ari: URL must not carry credentials; set User and Password")
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ari: URL %q: want scheme://host[:port][/prefix]", u.Redacted())
	}
	rest, ws := *u, *u
	switch u.Scheme {
	case "http", "ws":
		rest.Scheme, ws.Scheme = "http", "ws"
	case "https", "wss":
		rest.Scheme, ws.Scheme = "https", "wss"
	default:
		return nil, fmt.Errorf("ari: URL %q: scheme must be http, https, ws or wss", u.Redacted())
	}
	base := strings.TrimSuffix(u.Path, "/") + "/ari"
	rest.Path = base
	ws.Path = base + "/events"
	ws.RawQuery = url.Values{"app": {cfg.App}, "subscribeAll": {"true"}}.Encode()

	return &Source{
		cfg:       cfg,
		log:       cfg.Logger.With("source", "ari"),
		eventsURL: ws.String(),
		restURL:   rest.String(),
		auth:      "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+cfg.Password)),
		client:    &http.Client{Timeout: cfg.HTTPTimeout},
		jitter:    rand.Float64,
		live:      make(map[string]liveChannel),
		pending:   make(map[string]pendingChannel),
		stats:     Stats{ByType: make(map[string]uint64)},
	}, nil
}

// Seed tells the Source, before Run, which channels kanca followed when it
// last stopped, each by its latest input: the first reconciliation reports
// those Asterisk no longer lists as gone, at the latest time seeded. It
// must not be called while Run runs.
func (s *Source) Seed(live []cdr.Input) {
	if s.running.Load() {
		panic("ari: Seed called while the Source runs")
	}
	for _, in := range live {
		s.live[in.Channel.ID] = liveChannel{ch: in.Channel, server: in.Server}
		if in.Time.After(s.lastTime) {
			s.lastTime = in.Time
		}
	}
}

// Run connects and calls emit with every input, synchronously and in
// arrival order, from the calling goroutine: a slow emit slows reading
// (TCP back-pressure to Asterisk) instead of dropping events. After each
// (re)connect the reconciliation inputs (KindGone, KindCreated, KindState)
// come before any event of the new connection. Run reconnects, with backoff,
// after every failure, a refused login (401) included, and returns nil when
// ctx ends. It returns an error only if misused.
func (s *Source) Run(ctx context.Context, emit func(cdr.Input)) error {
	if emit == nil {
		return errors.New("ari: Run needs an emit function")
	}
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("ari: Source is already running")
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
			s.log.Warn("disconnected from Asterisk", "err", err, "retry_in", wait)
		case errors.Is(err, ErrUnauthorized):
			s.log.Error("cannot connect to Asterisk", "user", s.cfg.User, "err", err, "retry_in", wait)
		default:
			s.log.Warn("cannot connect to Asterisk", "err", err, "retry_in", wait)
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

// wait is the pause before attempt number attempt (0-based); jitter returns
// a value in [0,1).
func (b Backoff) wait(attempt int, jitter func() float64) time.Duration {
	return backoff.Wait(b.Initial, b.Max, b.Jitter, attempt, jitter())
}

// session is one connection: dial, reconcile, read until it fails. up says
// whether it got as far as reconciling, which resets the backoff.
func (s *Source) session(ctx context.Context, emit func(cdr.Input)) (up bool, err error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return false, err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxFrame)

	// The channel list is taken after the subscription exists, so every
	// change after the list is also in the stream: nothing falls between.
	if err := s.reconcile(ctx, emit); err != nil {
		return false, err
	}
	s.mu.Lock()
	s.stats.Connected = true
	if s.everUp {
		s.stats.Reconnects++
	}
	s.mu.Unlock()
	if s.everUp {
		s.log.Info("reconnected to Asterisk", "url", s.eventsURL)
	} else {
		s.log.Info("connected to Asterisk", "url", s.eventsURL)
	}
	s.everUp = true
	defer func() {
		s.mu.Lock()
		s.stats.Connected = false
		s.mu.Unlock()
	}()

	if s.cfg.PingInterval > 0 {
		kctx, cancel := context.WithCancel(ctx)
		stopped := make(chan struct{})
		go func() {
			defer close(stopped)
			s.keepalive(kctx, conn)
		}()
		// The prober never outlives its connection.
		defer func() {
			cancel()
			<-stopped
		}()
	}
	for {
		s.readWaiting.Store(true)
		_, data, err := conn.Read(ctx)
		s.readWaiting.Store(false)
		if err != nil {
			return true, fmt.Errorf("read events: %w", err)
		}
		s.framesRead.Add(1)
		s.handle(data, emit)
	}
}

func (s *Source) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, s.eventsURL, &websocket.DialOptions{
		HTTPClient: s.client,
		HTTPHeader: http.Header{"Authorization": {s.auth}},
	})
	if err == nil {
		return conn, nil
	}
	if resp != nil {
		if err := statusError(resp); err != nil {
			return nil, fmt.Errorf("connect %s: %w", s.eventsURL, err)
		}
	}
	return nil, fmt.Errorf("connect %s: %w", s.eventsURL, err)
}

// statusError turns a non-2xx answer into an error naming the status and
// Asterisk's message, if any.
func statusError(resp *http.Response) error {
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w (HTTP 401): check the user and password in ari.conf", ErrUnauthorized)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	}
	var body struct {
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if resp.Body != nil {
		_ = json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&body)
	}
	if msg := body.Message + body.Error; msg != "" {
		return fmt.Errorf("HTTP %s: %s", resp.Status, msg)
	}
	return fmt.Errorf("HTTP %s", resp.Status)
}

// keepalive closes conn when Asterisk stops answering pings while the loop
// is waiting for it. A ping that times out while frames flow, or while emit
// holds the loop (nobody reads the pong), proves nothing and is ignored.
func (s *Source) keepalive(ctx context.Context, conn *websocket.Conn) {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before := s.framesRead.Load()
		pctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPTimeout)
		err := conn.Ping(pctx)
		cancel()
		if err == nil || ctx.Err() != nil || s.framesRead.Load() != before || !s.readWaiting.Load() {
			continue
		}
		s.log.Warn("Asterisk stopped answering pings; dropping the connection", "err", err)
		conn.CloseNow()
		return
	}
}

// handle decodes one frame, keeps the live-channel memory and emits.
func (s *Source) handle(data []byte, emit func(cdr.Input)) {
	in, typ, ok, err := decode(data)
	s.mu.Lock()
	s.stats.Frames++
	if _, seen := s.stats.ByType[typ]; seen || len(s.stats.ByType) < maxTypes {
		s.stats.ByType[typ]++
	} else {
		s.stats.ByType["other"]++
	}
	switch {
	case err != nil:
		s.stats.Malformed++
	case !ok && !knownTypes[typ]:
		s.stats.Unknown++
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Warn("skipped a malformed ARI frame", "type", typ, "err", err, "frame", excerpt(data))
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
			// Reconciliation adopted it from the channel list moments
			// before its ChannelCreated, queued behind the list, arrived.
			return
		}
		s.live[id] = liveChannel{ch: in.Channel, server: in.Server}
	case cdr.KindDestroyed:
		delete(s.live, id)
	default:
		s.refresh(in.Channel)
		if in.Other != nil {
			s.refresh(*in.Other)
		}
	}
	emit(in)
}

// settle emits what a channel list said about a channel, unless the frame
// in, the channel's first since the list, says it itself. A ChannelCreated
// means the channel was born after the subscription: the frames tell its
// whole story. Any other frame means it is older: it is adopted with the
// listed snapshot. A listed state change is kept only when in shows it had
// already happened and in is not the change itself.
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
	case !p.adopt && in.Kind != cdr.KindState && in.Channel.State == p.lc.ch.State:
		emit(cdr.Input{Kind: cdr.KindState, Time: at, Server: p.lc.server, Channel: p.lc.ch})
	}
}

func (s *Source) refresh(ch cdr.Channel) {
	if lc, known := s.live[ch.ID]; known {
		lc.ch = ch
		s.live[ch.ID] = lc
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
	st.ByType = make(map[string]uint64, len(s.stats.ByType))
	for k, v := range s.stats.ByType {
		st.ByType[k] = v
	}
	return st
}
