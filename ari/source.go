package ari

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
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
	// OnReconcile, if set, is called after every (re)connect's
	// reconciliation; see follow.Config.
	OnReconcile func(follow.Gap)
	// ReadsVariable, if set, names the channel variables the tracker
	// reads (cdr.Config.ReadsVariable): ChannelVarset frames of any other
	// are dropped after reading their type and variable alone (Unread),
	// before a full decode. Nil decodes every frame.
	ReadsVariable func(name string) bool
	// DIDVariables are the channel variables read from a channel adopted
	// mid-call for the number its call arrived on (cdr.Config's); default
	// cdr.DefaultConfig's.
	DIDVariables []string
	// Now is the clock read where the PBX does not say its own (see
	// follow.Config.Now); default time.Now.
	Now func() time.Time
}

// ErrReplaced is wrapped when Asterisk says another WebSocket subscribed
// as kanca's application (ApplicationReplaced): Asterisk sends that one
// the events from then on and leaves kanca's socket open and silent.
var ErrReplaced = errors.New("another client subscribed as this ARI application and now gets its events")

// Backoff shapes the waits between connection attempts (see follow.Backoff).
type Backoff = follow.Backoff

const (
	defaultURL          = "http://127.0.0.1:8088"
	defaultApp          = "kanca"
	defaultHTTPTimeout  = 10 * time.Second
	defaultPingInterval = 30 * time.Second

	// maxFrame bounds one WebSocket message; the library's 32 KiB default
	// is below what a bridge with many channels or a snapshot with many
	// channelvars can reach.
	maxFrame = 8 << 20
)

// Source follows one Asterisk through ARI and turns its events into tracker
// inputs: the ARI adapter of a follow.Follower.
type Source struct {
	f         *follow.Follower
	cfg       Config
	log       *slog.Logger
	eventsURL string
	restURL   string // base for REST paths, ending in /ari
	client    *Client
}

// Stats is a copy of the Source's counters, for metrics.
type Stats struct {
	Frames    uint64            // frames received
	ByType    map[string]uint64 // frames per ARI event type ("" when a frame has none)
	Unknown   uint64            // frames of types ARI does not document
	Malformed uint64            // frames skipped because they did not decode
	follow.Link
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
	if cfg.DIDVariables == nil {
		cfg.DIDVariables = cdr.DefaultConfig().DIDVariables
	}
	if cfg.User == "" {
		return nil, errors.New("ari: no user: ARI needs an ari.conf user")
	}

	u, err := url.Parse(cfg.URL)
	if !strings.Contains(cfg.URL, "://") {
		// host:port parses as a scheme and an opaque rest, or not at all.
		if strings.Contains(cfg.URL, "@") {
			// Quoted, it would show the password before the @.
			return nil, errors.New("ari: URL has no scheme and carries credentials: write it as http://host:port, with the user and password set apart")
		}
		return nil, fmt.Errorf("ari: URL %q has no scheme: write it as http://%s", cfg.URL, cfg.URL)
	}
	if err != nil {
		// url.Error quotes the input, which could hold a password.
		return nil, errors.New("ari: URL does not parse: want http://host:port, Asterisk's http.conf bindaddr and bindport")
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
	// Asterisk serves ARI at PREFIX/ari: a URL given with its /ari (as
	// Asterisk's own docs write it) is the same server.
	base := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/ari") + "/ari"
	rest.Path = base
	ws.Path = base + "/events"
	ws.RawQuery = url.Values{"app": {cfg.App}, "subscribeAll": {"true"}}.Encode()

	s := &Source{
		cfg:       cfg,
		log:       cfg.Logger.With("source", "ari"),
		eventsURL: ws.String(),
		restURL:   rest.String(),
		client: &Client{
			base:    rest.String(),
			auth:    "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+cfg.Password)),
			http:    &http.Client{Timeout: cfg.HTTPTimeout},
			timeout: cfg.HTTPTimeout,
		},
	}
	s.f = follow.New(follow.Config{
		Name: "ari", PBX: "Asterisk", Logger: s.log, Backoff: cfg.Backoff,
		ProbeInterval: cfg.PingInterval, ProbeTimeout: cfg.HTTPTimeout, Probe: "pings",
		Refusals: []error{ErrUnauthorized, ErrReplaced}, RefusalAttrs: []any{"user", cfg.User, "app", cfg.App},
		ConnectedAttrs:  []any{"url", s.eventsURL},
		OtherIsSnapshot: true, // a Dial's caller is a whole snapshot
		OnReconcile:     cfg.OnReconcile,
		// A pong proves the socket, not that Asterisk still sends it the
		// application's events.
		CheckSilence: true,
		// Asterisk answers its list from its live channels: the events
		// queued behind it are read within milliseconds, so what the
		// list said and no event followed within 200 ms is told, lest a
		// crash soon after the reconnect lose it. Told early, a change
		// whose own event is late is placed at the list, not before.
		Settle: 200 * time.Millisecond,
		Now:    cfg.Now,
	}, s.dial)
	return s, nil
}

// Client is the REST client of this Source: same Asterisk, same user.
func (s *Source) Client() *Client { return s.client }

// App is the ARI application kanca subscribes as: calls it originates
// into it reach kanca's own socket, StasisStart included.
func (s *Source) App() string { return s.cfg.App }

// Info asks Asterisk who it is (see Client.Info).
func (s *Source) Info(ctx context.Context) (Info, error) { return s.client.Info(ctx) }

// Seed tells the Source, before Run, which channels kanca followed when it
// last stopped (see follow.Follower.Seed).
func (s *Source) Seed(live []cdr.Input) { s.f.Seed(live) }

// Run follows Asterisk until ctx ends, calling emit with every input in
// Asterisk's order (see follow.Follower.Run). It reconnects, with backoff,
// after every failure, a refused login (401) included.
func (s *Source) Run(ctx context.Context, emit func(cdr.Input)) error { return s.f.Run(ctx, emit) }

// Stats returns a copy of the counters; safe from any goroutine.
func (s *Source) Stats() Stats {
	st := s.f.Stats()
	return Stats{Frames: st.Received, ByType: st.ByType, Unknown: st.Unknown, Malformed: st.Malformed, Link: st.Link}
}

// dial opens the events WebSocket: the subscription exists once Asterisk
// accepted it.
func (s *Source) dial(ctx context.Context) (follow.Session, error) {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, s.eventsURL, &websocket.DialOptions{
		HTTPClient: s.client.http,
		HTTPHeader: http.Header{"Authorization": {s.client.auth}},
	})
	if err != nil {
		if resp != nil {
			if err := statusError(resp); err != nil {
				return nil, fmt.Errorf("connect %s: %w", s.eventsURL, err)
			}
		}
		return nil, fmt.Errorf("connect %s: %w", s.eventsURL, err)
	}
	conn.SetReadLimit(maxFrame)
	return &session{src: s, conn: conn}, nil
}

// session is one events WebSocket.
type session struct {
	src   *Source
	conn  *websocket.Conn
	cause atomic.Pointer[error] // why Close was called, if it was
	// buf holds the frame being read, kept from frame to frame: nothing
	// read from a frame keeps a part of it (decoding copies).
	buf bytes.Buffer
}

func (w *session) List(ctx context.Context) (follow.Listing, error) {
	l, err := w.src.list(ctx)
	if err != nil {
		return l, fmt.Errorf("reconcile: %w", err)
	}
	return l, nil
}

// Next reads one frame. Frames that queued while the channel list was
// taken are read first, in Asterisk's order.
func (w *session) Next(ctx context.Context, dst []cdr.Input) ([]cdr.Input, error) {
	w.buf.Reset()
	_, r, err := w.conn.Reader(ctx)
	if err == nil {
		_, err = w.buf.ReadFrom(r)
	}
	if err != nil {
		if cause := w.cause.Load(); cause != nil {
			err = *cause
		}
		return dst, fmt.Errorf("read events: %w", err)
	}
	data := w.buf.Bytes()
	if reads := w.src.cfg.ReadsVariable; reads != nil {
		if typ, unread := Unread(data, reads); unread {
			w.src.f.Received(typ)
			return dst, nil
		}
	}
	in, typ, ok, err := decode(data)
	w.src.f.Received(typ)
	switch {
	case err != nil:
		w.src.f.Malformed()
		w.src.log.Warn("skipped a malformed ARI frame", "type", typ, "err", err, "frame", follow.Excerpt(data))
	case typ == typeApplicationReplaced:
		return dst, fmt.Errorf("read events: %w (app %q): give every other ARI client its own app name", ErrReplaced, w.src.cfg.App)
	case !ok && !knownTypes[typ]:
		w.src.f.Unknown()
	case ok:
		dst = append(dst, in)
	}
	return dst, nil
}

// Probe pings: a pong comes back only while Asterisk, and the loop reading
// the WebSocket, are there.
func (w *session) Probe(ctx context.Context) error { return w.conn.Ping(ctx) }

func (w *session) Close(cause error) {
	if cause != nil {
		w.cause.Store(&cause)
	}
	w.conn.CloseNow()
}
