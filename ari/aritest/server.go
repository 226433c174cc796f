// Package aritest is a fake Asterisk REST Interface for tests, demos and
// benchmarks. It replays a script of raw ARI WebSocket frames (typically a
// recording loaded with LoadNDJSON) to the connected application, keeps the
// set of live channels the script implies, as Asterisk would, and can be
// told to cut the client off, carry on through a gap with nobody listening,
// refuse connections or hang.
//
// It speaks the endpoints kanca calls: the events WebSocket
// (/ari/events?app=APP&subscribeAll=true), GET /ari/channels and
// GET /ari/asterisk/info, all behind HTTP Basic auth.
package aritest

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Options configures a fake Asterisk. The zero value is usable.
type Options struct {
	User     string // Basic auth user accepted; default "kanca"
	Password string // Basic auth password accepted; default "kanca"
	App      string // the application clients must subscribe as; default "kanca"

	// EntityID is the asterisk_id /ari/asterisk/info reports; by default the
	// asterisk_id of the first frame played, else a fixed made-up address.
	EntityID string

	// Pace is the pause before each frame is sent; zero sends as fast as the
	// client reads.
	Pace time.Duration

	// OnSend, if set, is called with a frame's position in the script just
	// before the frame is written to the client, from the goroutine that
	// writes it: a benchmark's clock for when Asterisk sent an event.
	OnSend func(i int)

	// ForgetSent lets the server drop each frame once sent or lived
	// through, so a long benchmark script does not stay in memory.
	ForgetSent bool
}

const defaultEntityID = "02:00:00:00:00:01"

// Server is a fake Asterisk on a loopback httptest server.
type Server struct {
	// URL is the base address, http://127.0.0.1:PORT, as a kanca ARI URL.
	URL string

	srv  *httptest.Server
	opts Options
	done chan struct{}

	mu             sync.Mutex
	user, password string
	script         [][]byte
	pos            int                    // frames Asterisk has sent or lived through
	live           map[string]liveChannel // by channel id
	liveSeq        int                    // creation counter, for order
	lastTime       time.Time              // latest frame timestamp: Asterisk's clock
	entityID       string
	dropAt, gap    int
	failures       []failure
	attempts       int
	conns          int
	listings       int
	cur            *websocket.Conn // the connected client; a newer one replaces it
	changed        chan struct{}   // closed and replaced whenever the above changes
	closed         bool
}

type liveChannel struct {
	id   string
	seq  int // creation order
	snap json.RawMessage
}

type failure struct {
	status int
	delay  time.Duration
}

// NewServer starts a fake Asterisk on 127.0.0.1. Close it when done.
func NewServer(opts Options) *Server {
	if opts.User == "" {
		opts.User = "kanca"
	}
	if opts.Password == "" {
		opts.Password = "kanca"
	}
	if opts.App == "" {
		opts.App = "kanca"
	}
	s := &Server{
		opts:     opts,
		done:     make(chan struct{}),
		user:     opts.User,
		password: opts.Password,
		entityID: opts.EntityID,
		dropAt:   -1,
		live:     map[string]liveChannel{},
		changed:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ari/events", s.events)
	mux.HandleFunc("GET /ari/channels", s.channels)
	mux.HandleFunc("GET /ari/asterisk/info", s.info)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Resource not found"})
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close cuts every client off and stops the server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	if s.cur != nil {
		s.cur.CloseNow()
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// Play appends frames to the script. A connected client gets them at once
// (after Pace); frames played while nobody is connected wait for the next
// client. Frames no client should see belong in DropAfter's gap.
func (s *Server) Play(frames ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, frames...)
	s.notifyLocked()
}

// DropAfter cuts the connected client off once n frames of the script have
// been sent, then lives through the next gap frames with nobody connected:
// they change the live channels (what GET /ari/channels answers) but no
// client ever receives them. The gap frames must already be played; a gap
// longer than the script stops at its end. The next connection resumes
// after the gap. n counts from the start of the script; a position already
// passed never triggers.
func (s *Server) DropAfter(n, gap int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAt, s.gap = n, gap
	s.notifyLocked()
}

// FailNext makes the next n event-WebSocket attempts answer status (for
// example 500 or 503) instead of upgrading.
func (s *Server) FailNext(n, status int) {
	s.queueFailures(n, failure{status: status})
}

// HangNext makes the next n event-WebSocket attempts hang for d (or until
// the client gives up) before answering 503, like an Asterisk that is
// starting or stuck.
func (s *Server) HangNext(n int, d time.Duration) {
	s.queueFailures(n, failure{status: http.StatusServiceUnavailable, delay: d})
}

func (s *Server) queueFailures(n int, f failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// LiveThrough moves the script n frames on (up to its end) without sending
// them: Asterisk going on while kanca is away. Its live channels change;
// no client ever receives these frames. It returns how many it lived
// through.
func (s *Server) LiveThrough(n int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	done := 0
	for ; done < n && s.pos < len(s.script); done++ {
		s.advanceLocked()
	}
	if done > 0 {
		s.notifyLocked()
	}
	return done
}

// SetAuth changes the Basic credentials accepted from now on, as an
// operator editing ari.conf would.
func (s *Server) SetAuth(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.password = user, password
}

// Attempts is how many event-WebSocket requests arrived, refused or not.
func (s *Server) Attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// Connections is how many event WebSockets the server accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Connected reports whether a client is subscribed now. A client that
// closed its end is no longer connected once the server has read the close.
func (s *Server) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil
}

// Listings is how many GET /ari/channels the server answered. A client
// lists channels right after subscribing, so a test that plays its script
// only once Listings has moved knows every frame arrives after the list.
func (s *Server) Listings() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listings
}

// Pos is how many frames of the script Asterisk has sent or lived through.
func (s *Server) Pos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pos
}

// Changed returns a channel closed at the next change of the server's state
// (a frame sent, a connection accepted or dropped, a frame played), so
// callers can wait for a condition without polling on a timer.
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// LiveChannels is the ids of the channels alive at the script's position, in
// creation order.
func (s *Server) LiveChannels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.liveLocked()
	ids := make([]string, len(live))
	for i, c := range live {
		ids[i] = c.id
	}
	return ids
}

// liveLocked is the live channels in creation order.
func (s *Server) liveLocked() []liveChannel {
	live := make([]liveChannel, 0, len(s.live))
	for _, c := range s.live {
		live = append(live, c)
	}
	slices.SortFunc(live, func(a, b liveChannel) int { return a.seq - b.seq })
	return live
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	s.mu.Lock()
	wantUser, wantPass := s.user, s.password
	s.mu.Unlock()
	return ok && subtle.ConstantTimeCompare([]byte(user), []byte(wantUser)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(wantPass)) == 1
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Authentication required"})
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.attempts++
	var fail *failure
	if len(s.failures) > 0 {
		fail = &s.failures[0]
		s.failures = s.failures[1:]
	}
	s.notifyLocked()
	s.mu.Unlock()

	if fail != nil {
		if fail.delay > 0 {
			t := time.NewTimer(fail.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			case <-s.done:
				return
			}
		}
		writeJSON(w, fail.status, map[string]string{"message": http.StatusText(fail.status)})
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	q := r.URL.Query()
	if q.Get("app") != s.opts.App {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "app must be " + s.opts.App})
		return
	}
	if q.Get("subscribeAll") != "true" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "subscribeAll=true required"})
		return
	}
	// Counted before the handshake completes, so a client that got in
	// always finds itself counted.
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.mu.Lock()
		s.conns--
		s.mu.Unlock()
		return
	}
	defer c.CloseNow()
	// Nothing is expected from the client; CloseRead answers its pings and
	// notices when it goes away.
	ctx := c.CloseRead(context.Background())

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.cur != nil {
		s.cur.CloseNow()
	}
	s.cur = c
	s.notifyLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if s.cur == c {
			s.cur = nil
			s.notifyLocked()
		}
		s.mu.Unlock()
	}()
	s.stream(ctx, c)
}

// stream sends the script to c from the current position until c goes away,
// is replaced, or DropAfter cuts it off.
func (s *Server) stream(ctx context.Context, c *websocket.Conn) {
	for {
		if s.opts.Pace > 0 {
			t := time.NewTimer(s.opts.Pace)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			case <-s.done:
				t.Stop()
				return
			}
		}
		s.mu.Lock()
		for s.cur == c && s.pos >= len(s.script) && s.pos != s.dropAt {
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return
			case <-s.done:
				return
			}
			s.mu.Lock()
		}
		if s.cur != c {
			s.mu.Unlock()
			return
		}
		if s.pos == s.dropAt {
			// The gap is lived through before the lock is released, so a
			// client that reconnects at once already finds Asterisk past it.
			for i := 0; i < s.gap && s.pos < len(s.script); i++ {
				s.advanceLocked()
			}
			s.dropAt, s.gap = -1, 0
			s.cur = nil
			s.notifyLocked()
			s.mu.Unlock()
			c.CloseNow()
			return
		}
		i, fr := s.pos, s.script[s.pos]
		s.advanceLocked()
		s.notifyLocked()
		s.mu.Unlock()
		if s.opts.OnSend != nil {
			s.opts.OnSend(i)
		}
		if err := c.Write(ctx, websocket.MessageText, fr); err != nil {
			return
		}
	}
}

// advanceLocked moves the script one frame on and applies it to the live
// channels the way Asterisk's own state moves: a channel lives from its first
// snapshot to its ChannelDestroyed.
func (s *Server) advanceLocked() {
	raw := s.script[s.pos]
	if s.opts.ForgetSent {
		s.script[s.pos] = nil
	}
	s.pos++
	var f struct {
		Type       string          `json:"type"`
		Timestamp  string          `json:"timestamp"`
		AsteriskID string          `json:"asterisk_id"`
		Channel    json.RawMessage `json:"channel"`
		Peer       json.RawMessage `json:"peer"`
		Caller     json.RawMessage `json:"caller"`
	}
	if json.Unmarshal(raw, &f) != nil {
		return // a malformed frame is replayed as it is and changes nothing
	}
	if t, ok := parseTime(f.Timestamp); ok && t.After(s.lastTime) {
		s.lastTime = t
	}
	if s.entityID == "" {
		s.entityID = f.AsteriskID
	}
	switch f.Type {
	case "ChannelDestroyed":
		if id := channelID(f.Channel); id != "" {
			delete(s.live, id)
		}
	case "Dial":
		s.upsertLocked(f.Peer)
		s.upsertLocked(f.Caller)
	default:
		s.upsertLocked(f.Channel)
	}
}

func (s *Server) upsertLocked(snap json.RawMessage) {
	id := channelID(snap)
	if id == "" {
		return
	}
	if c, ok := s.live[id]; ok {
		c.snap = snap
		s.live[id] = c
		return
	}
	s.liveSeq++
	s.live[id] = liveChannel{id: id, seq: s.liveSeq, snap: snap}
}

func channelID(snap json.RawMessage) string {
	var c struct {
		ID string `json:"id"`
	}
	if len(snap) == 0 || json.Unmarshal(snap, &c) != nil {
		return ""
	}
	return c.ID
}

func parseTime(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05-0700", time.RFC3339Nano} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// setDateLocked makes the Date header follow the script's clock rather than the
// machine's, as a real Asterisk's would follow its own.
func (s *Server) setDateLocked(w http.ResponseWriter) {
	if s.lastTime.IsZero() {
		// Before the script starts its clock is unknown; a nil entry
		// keeps net/http from stamping the machine's time instead.
		w.Header()["Date"] = nil
		return
	}
	w.Header().Set("Date", s.lastTime.UTC().Format(http.TimeFormat))
}

func (s *Server) channels(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	s.mu.Lock()
	live := s.liveLocked()
	list := make([]json.RawMessage, len(live))
	for i, c := range live {
		list[i] = c.snap
	}
	s.setDateLocked(w)
	s.listings++
	s.notifyLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	s.mu.Lock()
	id := s.entityID
	s.setDateLocked(w)
	s.mu.Unlock()
	if id == "" {
		id = defaultEntityID
	}
	// The shape of Asterisk 20's AsteriskInfo, trimmed to what a client
	// checking the connection reads.
	writeJSON(w, http.StatusOK, map[string]any{
		"build": map[string]string{"os": "Linux", "machine": "x86_64"},
		"system": map[string]string{
			"version":   "20.20.1",
			"entity_id": id,
		},
		"config": map[string]any{
			"name":             "",
			"default_language": "en",
			"setid":            map[string]string{"user": "asterisk", "group": "asterisk"},
		},
		"status": map[string]string{},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
