// Package aritest is a fake Asterisk REST Interface for tests, demos and
// benchmarks. It replays a script of raw ARI WebSocket frames (typically a
// recording loaded with LoadNDJSON) to the connected application, keeps the
// set of live channels the script implies, as Asterisk would, and can be
// told to cut the client off, carry on through a gap with nobody listening,
// refuse connections or hang.
//
// It speaks the endpoints kanca calls: the events WebSocket
// (/ari/events?app=APP&subscribeAll=true), GET /ari/channels,
// GET /ari/channels/{id}/variable, GET /ari/bridges and
// GET /ari/asterisk/info, all behind HTTP Basic auth. As Asterisk does, it gives an application's events to
// the newest WebSocket subscribed as it and sends the one it replaced an
// ApplicationReplaced, leaving it open and silent.
package aritest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/kanca/kanca/follow/followtest"
)

// Options configures a fake Asterisk. The zero value is usable.
type Options struct {
	User     string // Basic auth user accepted; default "kanca"
	Password string // Basic auth password accepted; default "kanca"
	App      string // the application clients must subscribe as; default "kanca"
	// ReadOnly refuses every write (originate, play, hang up) with 403,
	// as Asterisk does for an ari.conf user with read_only = yes.
	ReadOnly bool
	// OtherApps are further application names a client may subscribe as
	// (kanca doctor's): such a socket is accepted and hears nothing, the
	// script being App's.
	OtherApps []string

	// EntityID is the asterisk_id /ari/asterisk/info reports; by default the
	// asterisk_id of the first frame played, else a fixed made-up address.
	EntityID string

	// Pace is the pause before each frame is sent; zero sends as fast as the
	// client reads.
	Pace time.Duration

	// PlaybackLength is how long each sound played on an originated
	// channel lasts before PlaybackFinished (one after another, as
	// Asterisk queues them); zero never finishes one.
	PlaybackLength time.Duration

	// OnSend, if set, is called with a frame's position in the script just
	// before the frame is written to the client, from the goroutine that
	// writes it: a benchmark's clock for when Asterisk sent an event.
	OnSend func(i int)

	// ForgetSent lets the server drop each frame once sent or lived
	// through, so a long benchmark script does not stay in memory.
	ForgetSent bool

	// Clock, if set, is Asterisk's clock, which the Date header of its
	// answers gives; by default the latest frame's time. Asterisk's clock
	// runs on between events: a test that lives through a gap and comes
	// back later than its last event says when. Called with the server's
	// lock held: it must not call the server.
	Clock func() time.Time
}

const defaultEntityID = "02:00:00:00:00:01"

// LoadNDJSON reads a recording of raw ARI frames (see followtest.LoadNDJSON).
func LoadNDJSON(path string) ([][]byte, error) { return followtest.LoadNDJSON(path) }

// ReadNDJSON reads raw ARI frames, one a line (see followtest.ReadNDJSON).
func ReadNDJSON(r io.Reader) ([][]byte, error) { return followtest.ReadNDJSON(r) }

// Server is a fake Asterisk on a loopback httptest server. The script, its
// drops and gaps, and the counters are its Stage's.
type Server struct {
	*followtest.Stage
	// URL is the base address, http://127.0.0.1:PORT, as a kanca ARI URL.
	URL string

	srv  *httptest.Server
	opts Options

	// Guarded by the Stage's lock.
	user, password string
	live           followtest.Channels[json.RawMessage]
	lastTime       time.Time // latest frame timestamp: Asterisk's clock
	entityID       string
	failures       []failure
	cur            *websocket.Conn // the connected client; a newer one replaces it
	sentCur        int             // frames written to cur

	orig   origin            // originated calls, under its own lock
	digits sync.Map          // channel id -> the digit its callee presses
	silent []*websocket.Conn // replaced clients and other applications, left open
	vars   map[string]*chanVars
	// bridges are the bridges the script's frames leave standing, each
	// by its latest snapshot (ARI's Bridge model, as the frames carry it).
	bridges followtest.Channels[json.RawMessage]
	// requestor names, by a Dial's peer, the channel that dialled it: as
	// Asterisk allocates a dialled channel with its requestor's linkedid,
	// the peer belongs to that call from its creation, before its Dial.
	requestor map[string]string
}

// chanVars is what the fake keeps of a channel to answer
// GET /channels/{id}/variable: the variables the script set on it
// (ChannelVarset, by their bare names), the call it belongs to and the
// number it was dialled as.
type chanVars struct {
	set    map[string]string
	linked string
	dnid   string
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
		opts:      opts,
		user:      opts.User,
		password:  opts.Password,
		entityID:  opts.EntityID,
		vars:      map[string]*chanVars{},
		requestor: map[string]string{},
	}
	s.Stage = followtest.NewStage(followtest.StageOptions{Pace: opts.Pace, Apply: s.apply, ForgetSent: opts.ForgetSent})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ari/events", s.events)
	mux.HandleFunc("GET /ari/channels", s.channels)
	mux.HandleFunc("GET /ari/channels/{id}/variable", s.variable)
	mux.HandleFunc("GET /ari/bridges", s.listBridges)
	mux.HandleFunc("GET /ari/asterisk/info", s.info)
	mux.HandleFunc("POST /ari/channels", s.originate)
	mux.HandleFunc("POST /ari/channels/{id}/play", s.play)
	mux.HandleFunc("DELETE /ari/channels/{id}", s.hangup)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Resource not found"})
	})
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close cuts every client off and stops the server.
func (s *Server) Close() {
	if !s.Stage.Close(func() {
		if s.cur != nil {
			s.cur.CloseNow()
		}
		for _, c := range s.silent {
			c.CloseNow()
		}
	}) {
		return
	}
	s.srv.CloseClientConnections()
	s.srv.Close()
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
	s.Lock()
	defer s.Unlock()
	for range n {
		s.failures = append(s.failures, f)
	}
}

// SetAuth changes the Basic credentials accepted from now on, as an
// operator editing ari.conf would.
func (s *Server) SetAuth(user, password string) {
	s.Lock()
	defer s.Unlock()
	s.user, s.password = user, password
}

// Connected reports whether a client is subscribed now. A client that
// closed its end is no longer connected once the server has read the close.
func (s *Server) Connected() bool {
	s.Lock()
	defer s.Unlock()
	return s.cur != nil
}

// LiveChannels is the ids of the channels alive at the script's position, in
// creation order.
func (s *Server) LiveChannels() []string {
	s.Lock()
	defer s.Unlock()
	return s.live.IDs()
}

// writeRefused answers a write of a read_only user as Asterisk does.
func (s *Server) writeRefused(w http.ResponseWriter, r *http.Request) bool {
	if !s.opts.ReadOnly || r.Method == http.MethodGet {
		return false
	}
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "Write access denied"})
	return true
}

func (s *Server) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	s.Lock()
	wantUser, wantPass := s.user, s.password
	s.Unlock()
	return ok && subtle.ConstantTimeCompare([]byte(user), []byte(wantUser)) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte(wantPass)) == 1
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
	writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "Authentication required"})
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	s.Lock()
	s.AttemptLocked()
	var fail *failure
	if len(s.failures) > 0 {
		fail = &s.failures[0]
		s.failures = s.failures[1:]
	}
	s.Unlock()

	if fail != nil {
		if fail.delay > 0 && !s.Pause(r.Context(), fail.delay) {
			return
		}
		writeJSON(w, fail.status, map[string]string{"message": http.StatusText(fail.status)})
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	q := r.URL.Query()
	other := slices.Contains(s.opts.OtherApps, q.Get("app"))
	if q.Get("app") != s.opts.App && !other {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "app must be " + s.opts.App})
		return
	}
	if q.Get("subscribeAll") != "true" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "subscribeAll=true required"})
		return
	}
	// Counted before the handshake completes, so a client that got in
	// always finds itself counted.
	s.Lock()
	s.ConnectedLocked(1)
	s.Unlock()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.Lock()
		s.ConnectedLocked(-1)
		s.Unlock()
		return
	}
	defer c.CloseNow()
	// Nothing is expected from the client; CloseRead answers its pings and
	// notices when it goes away.
	ctx := c.CloseRead(context.Background())

	s.Lock()
	if s.ClosedLocked() {
		s.Unlock()
		return
	}
	if other {
		s.silent = append(s.silent, c)
		s.Unlock()
		<-ctx.Done()
		return
	}
	if old := s.cur; old != nil {
		// Asterisk tells the replaced socket and keeps it open: its
		// reader waits for events that go to the newer one.
		s.silent = append(s.silent, old)
		go s.replaced(old)
	}
	s.cur, s.sentCur = c, 0
	s.NotifyLocked()
	s.Unlock()
	defer func() {
		s.Lock()
		if s.cur == c {
			s.cur = nil
			s.NotifyLocked()
		}
		s.Unlock()
	}()
	s.stream(ctx, c)
}

// replaced sends c the ApplicationReplaced Asterisk sends a socket another
// took the application from; its shape is Asterisk's app_update (res/stasis/app.c).
func (s *Server) replaced(c *websocket.Conn) {
	s.Lock()
	at, id := s.lastTime, s.entityID
	s.Unlock()
	if at.IsZero() {
		at = time.Now()
	}
	fr, _ := json.Marshal(map[string]string{
		"type": "ApplicationReplaced", "timestamp": at.Format("2006-01-02T15:04:05.000-0700"),
		"application": s.opts.App, "asterisk_id": cmp.Or(id, defaultEntityID),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageText, fr)
}

// stream sends the script to c from the current position until c goes away,
// is replaced, or DropAfter cuts it off.
func (s *Server) stream(ctx context.Context, c *websocket.Conn) {
	for {
		// A replaced client is closed by its successor, which ends ctx.
		step, i, fr := s.Next(ctx, func() bool { return s.cur == c }, func() { s.cur = nil })
		switch step {
		case followtest.Stop:
			return
		case followtest.Drop:
			c.CloseNow()
			return
		}
		if s.opts.OnSend != nil {
			s.opts.OnSend(i)
		}
		err := c.Write(ctx, websocket.MessageText, fr)
		s.Sent()
		if err != nil {
			return
		}
		s.Lock()
		if s.cur == c {
			s.sentCur++
		}
		s.Unlock()
	}
}

// SentToCurrent is how many frames the connected client was sent since it
// subscribed: beside what the client says it read, how far behind it is.
func (s *Server) SentToCurrent() int {
	s.Lock()
	defer s.Unlock()
	return s.sentCur
}

// Play appends frames to the script (see followtest.Stage.Play), noting
// first who dialled each Dial's peer.
func (s *Server) Play(frames ...[]byte) {
	s.Lock()
	for _, fr := range frames {
		if !bytes.Contains(fr, []byte(`"Dial"`)) {
			continue
		}
		var f struct {
			Type   string          `json:"type"`
			Peer   json.RawMessage `json:"peer"`
			Caller json.RawMessage `json:"caller"`
		}
		if json.Unmarshal(fr, &f) != nil || f.Type != "Dial" {
			continue
		}
		peer, caller := channelID(f.Peer), channelID(f.Caller)
		if _, seen := s.requestor[peer]; !seen && peer != "" && caller != "" {
			s.requestor[peer] = caller
		}
	}
	s.Unlock()
	s.Stage.Play(frames...)
}

// apply moves Asterisk's channels by one frame, the way its own state
// moves: a channel lives from its first snapshot to its ChannelDestroyed.
func (s *Server) apply(_ int, raw []byte) {
	var f struct {
		Type       string          `json:"type"`
		Timestamp  string          `json:"timestamp"`
		AsteriskID string          `json:"asterisk_id"`
		Channel    json.RawMessage `json:"channel"`
		Peer       json.RawMessage `json:"peer"`
		Caller     json.RawMessage `json:"caller"`
		Bridge     json.RawMessage `json:"bridge"`
	}
	if json.Unmarshal(raw, &f) != nil {
		return // a malformed frame is replayed as it is and changes nothing
	}
	s.noteVarsLocked(raw, f.Type, f.Channel, f.Peer, f.Caller)
	s.bridgeLocked(f.Type, f.Bridge, channelID(f.Channel))
	if t, ok := parseTime(f.Timestamp); ok && t.After(s.lastTime) {
		s.lastTime = t
	}
	if s.entityID == "" {
		s.entityID = f.AsteriskID
	}
	switch f.Type {
	case "ChannelDestroyed":
		if id := channelID(f.Channel); id != "" {
			s.live.Delete(id)
			delete(s.vars, id)
			delete(s.requestor, id)
		}
	case "Dial":
		s.upsertLocked(f.Peer)
		s.upsertLocked(f.Caller)
	default:
		s.upsertLocked(f.Channel)
	}
}

// bridgeLocked moves the bridge table by one frame, as Asterisk's own
// moves: a bridge lives from BridgeCreated to BridgeDestroyed, and its
// snapshot in ChannelEnteredBridge and ChannelLeftBridge is its membership
// from then on. A destroyed channel leaves every bridge. As
// ast_bridge_channel_update_linkedids does, a channel entering a bridge
// gives every channel in it the oldest linkedid among them.
func (s *Server) bridgeLocked(typ string, snap json.RawMessage, channel string) {
	var b struct {
		ID       string   `json:"id"`
		Channels []string `json:"channels"`
	}
	if typ == "ChannelDestroyed" {
		for _, id := range s.bridges.IDs() {
			raw, _ := s.bridges.Get(id)
			if json.Unmarshal(raw, &b) != nil || !slices.Contains(b.Channels, channel) {
				continue
			}
			var m map[string]any
			if json.Unmarshal(raw, &m) != nil {
				continue
			}
			m["channels"] = slices.DeleteFunc(b.Channels, func(c string) bool { return c == channel })
			next, _ := json.Marshal(m)
			s.bridges.Put(id, next)
		}
		return
	}
	if len(snap) == 0 || json.Unmarshal(snap, &b) != nil || b.ID == "" {
		return
	}
	switch typ {
	case "BridgeDestroyed":
		s.bridges.Delete(b.ID)
	case "BridgeCreated", "ChannelEnteredBridge", "ChannelLeftBridge":
		s.bridges.Put(b.ID, snap)
	}
	if typ != "ChannelEnteredBridge" {
		return
	}
	oldest := ""
	for _, c := range b.Channels {
		if v := s.vars[c]; v != nil && (oldest == "" || olderID(v.linked, oldest)) {
			oldest = v.linked
		}
	}
	for _, c := range b.Channels {
		if v := s.vars[c]; v != nil && oldest != "" {
			v.linked = oldest
		}
	}
}

// olderID says whether uniqueid a (epoch.sequence) was allocated before b.
func olderID(a, b string) bool {
	ae, as, _ := strings.Cut(a, ".")
	be, bs, _ := strings.Cut(b, ".")
	if len(ae) != len(be) {
		return len(ae) < len(be)
	}
	if ae != be {
		return ae < be
	}
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	return as < bs
}

func (s *Server) upsertLocked(snap json.RawMessage) {
	if id := channelID(snap); id != "" {
		s.live.Put(id, snap)
	}
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
	if s.opts.Clock != nil {
		if t := s.opts.Clock(); !t.IsZero() {
			w.Header().Set("Date", t.UTC().Format(http.TimeFormat))
			return
		}
	}
	if s.lastTime.IsZero() {
		// Before the script starts its clock is unknown; a nil entry
		// keeps net/http from stamping the machine's time instead.
		w.Header()["Date"] = nil
		return
	}
	w.Header().Set("Date", s.lastTime.UTC().Format(http.TimeFormat))
}

func (s *Server) channels(w http.ResponseWriter, r *http.Request) {
	if !s.Awake() {
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	s.Lock()
	list := s.live.Values()
	s.setDateLocked(w)
	s.ListedLocked()
	s.Unlock()
	writeJSON(w, http.StatusOK, list)
}

// listBridges answers GET /ari/bridges as ast_ari_bridges_list does: every
// bridge's snapshot, the shape of the frames' "bridge" (the Bridge model of
// rest-api/api-docs/bridges.json).
func (s *Server) listBridges(w http.ResponseWriter, r *http.Request) {
	if !s.Awake() {
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	s.Lock()
	list := s.bridges.Values()
	s.setDateLocked(w)
	s.Unlock()
	writeJSON(w, http.StatusOK, list)
}

// noteVarsLocked keeps what GET /channels/{id}/variable answers, the way
// Asterisk's channel holds it: a channel first seen ringing came in and
// was dialled as its extension then (CALLERID(dnid)); a Dial's peer joins
// its caller's call (CHANNEL(linkedid)) unless channelvars say otherwise;
// ChannelVarset sets a variable under its bare name (__DID is DID).
func (s *Server) noteVarsLocked(raw []byte, typ string, snaps ...json.RawMessage) {
	var first struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Dialplan struct {
			Exten string `json:"exten"`
		} `json:"dialplan"`
		ChannelVars map[string]string `json:"channelvars"`
	}
	for _, snap := range snaps {
		if len(snap) == 0 || json.Unmarshal(snap, &first) != nil || first.ID == "" || s.vars[first.ID] != nil {
			continue
		}
		v := &chanVars{set: map[string]string{}, linked: first.ID}
		if r := s.vars[s.requestor[first.ID]]; r != nil {
			v.linked = r.linked
		}
		if l := first.ChannelVars["CHANNEL(linkedid)"]; l != "" {
			v.linked = l
		}
		if first.State == "Ring" {
			v.dnid = first.Dialplan.Exten
		}
		s.vars[first.ID] = v
	}
	switch typ {
	case "Dial":
		peer, caller := s.vars[channelID(snaps[1])], s.vars[channelID(snaps[2])]
		if peer != nil && caller != nil && peer.linked == channelID(snaps[1]) {
			peer.linked = caller.linked
		}
	case "ChannelVarset":
		var f struct {
			Variable string `json:"variable"`
			Value    string `json:"value"`
		}
		if v := s.vars[channelID(snaps[0])]; v != nil && json.Unmarshal(raw, &f) == nil && f.Variable != "" {
			v.set[strings.TrimLeft(f.Variable, "_")] = f.Value
		}
	}
}

// variable answers GET /channels/{id}/variable?variable=NAME as Asterisk's
// ast_ari_channels_get_channel_var does: {"value": ...}; 404 for a channel
// or variable not found, 500 for a function it cannot read. Of functions
// it reads CHANNEL(linkedid) and CALLERID(dnid).
func (s *Server) variable(w http.ResponseWriter, r *http.Request) {
	if !s.Awake() {
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	name := r.URL.Query().Get("variable")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Variable name is required"})
		return
	}
	s.Lock()
	v := s.vars[r.PathValue("id")]
	var value string
	found := v != nil
	if found {
		switch name {
		case "CHANNEL(linkedid)":
			value = v.linked
		case "CALLERID(dnid)":
			value = v.dnid
		default:
			if strings.HasSuffix(name, ")") {
				s.Unlock()
				writeJSON(w, http.StatusInternalServerError, map[string]string{"message": "Unable to read provided function"})
				return
			}
			value, found = v.set[strings.TrimLeft(name, "_")]
		}
	}
	s.Unlock()
	switch {
	case v == nil:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Provided channel was not found"})
	case !found:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Provided variable was not found"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"value": value})
	}
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	if !s.Awake() {
		return
	}
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	s.Lock()
	id := s.entityID
	s.setDateLocked(w)
	s.Unlock()
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
