package aritest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Callee says what the called party of an originated call does. The
// zero value answers and presses nothing.
type Callee struct {
	Busy     bool   // 486 Busy Here: ChannelHangupRequest 17/486, Dial BUSY, ChannelDestroyed 17
	NoAnswer bool   // rings until the timeout: ChannelDestroyed 19, nothing else
	Digit    string // pressed once the first playback starts: ChannelDtmfReceived
}

// Originated is one POST /ari/channels the fake took.
type Originated struct {
	Query     map[string]string // endpoint, app, callerId, timeout, channelId, context, extension
	ChannelID string
	Plays     []string // media of each POST .../play, in order
	HungUp    bool     // DELETE /ari/channels/{id}
	// busyUntil is when the last sound queued on it ends.
	busyUntil time.Time

	name, caller string
	created      time.Time
}

// origin is the fake's record of originated channels (guarded by its mu).
type origin struct {
	mu     sync.Mutex
	callee func(endpoint string) Callee
	calls  []*Originated
	byID   map[string]*Originated
	seq    int
}

// OnOriginate sets what the called party of each originated endpoint
// does (default: answers).
func (s *Server) OnOriginate(f func(endpoint string) Callee) {
	s.orig.mu.Lock()
	s.orig.callee = f
	s.orig.mu.Unlock()
}

// Originated returns a copy of the calls originated so far.
func (s *Server) Originated() []Originated {
	s.orig.mu.Lock()
	defer s.orig.mu.Unlock()
	out := make([]Originated, len(s.orig.calls))
	for i, c := range s.orig.calls {
		out[i] = *c
		out[i].Plays = append([]string(nil), c.Plays...)
	}
	return out
}

const ariTime = "2006-01-02T15:04:05.000-0700"

// chanSnap is a channel snapshot shaped as Asterisk 20 sends it for an
// originated PJSIP channel (testdata/ari-originate).
func chanSnap(id, name, state, caller, app, appData string, created time.Time) map[string]any {
	return map[string]any{
		"id": id, "name": name, "state": state, "protocol_id": "",
		"caller":       map[string]string{"name": "", "number": caller},
		"connected":    map[string]string{"name": "", "number": caller},
		"accountcode":  "",
		"dialplan":     map[string]any{"context": "from-trunk", "exten": "s", "priority": 1, "app_name": app, "app_data": appData},
		"creationtime": created.Format(ariTime), "language": "en",
	}
}

func (s *Server) frame(typ string, fields map[string]any) []byte {
	fields["type"] = typ
	fields["timestamp"] = time.Now().Format(ariTime)
	fields["asterisk_id"] = s.entity()
	fields["application"] = s.opts.App
	b, _ := json.Marshal(fields)
	return b
}

func (s *Server) entity() string {
	s.Lock()
	defer s.Unlock()
	if s.entityID == "" {
		s.entityID = defaultEntityID
	}
	return s.entityID
}

// originate answers POST /ari/channels as Asterisk does: 200 at once with
// the new channel (state Down), then the call's events, in the order the
// recordings show them on a subscribeAll socket.
func (s *Server) originate(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		unauthorized(w)
		return
	}
	if s.writeRefused(w, r) {
		return
	}
	q := r.URL.Query()
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "endpoint: required"})
		return
	}
	if q.Get("app") == "" && q.Get("extension") == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Application or extension must be specified"})
		return
	}
	o := &s.orig
	o.mu.Lock()
	o.seq++
	id := q.Get("channelId")
	if id == "" {
		id = fmt.Sprintf("%d.%d", time.Now().Unix(), o.seq)
	}
	rec := &Originated{Query: map[string]string{}, ChannelID: id}
	for k := range q {
		rec.Query[k] = q.Get(k)
	}
	o.calls = append(o.calls, rec)
	if o.byID == nil {
		o.byID = map[string]*Originated{}
	}
	o.byID[id] = rec
	callee := Callee{}
	if o.callee != nil {
		callee = o.callee(endpoint)
	}
	o.mu.Unlock()

	trunk := strings.SplitN(strings.TrimPrefix(endpoint, "PJSIP/"), "@", 2)
	name := fmt.Sprintf("PJSIP/%s-%08x", trunk[len(trunk)-1], s.origSeq())
	dialstring := strings.TrimPrefix(endpoint, "PJSIP/")
	caller := q.Get("callerId")
	now := time.Now()
	o.mu.Lock()
	rec.name, rec.caller, rec.created = name, caller, now
	o.mu.Unlock()
	snap := func(state, app, data string) map[string]any {
		return chanSnap(id, name, state, caller, app, data, now)
	}
	dial := func(status string, st string) []byte {
		return s.frame("Dial", map[string]any{"dialstatus": status, "forward": "", "dialstring": dialstring, "peer": snap(st, "AppDial2", "(Outgoing Line)")})
	}
	created := chanSnap(id, name, "Down", "", "", "", now)
	frames := [][]byte{
		s.frame("ChannelCreated", map[string]any{"channel": created}),
		s.frame("ChannelDialplan", map[string]any{"dialplan_app": "AppDial2", "dialplan_app_data": "(Outgoing Line)", "channel": snap("Down", "AppDial2", "(Outgoing Line)")}),
		s.frame("ChannelCallerId", map[string]any{"caller_presentation": 0, "caller_presentation_txt": "Presentation Allowed, Not Screened", "channel": snap("Down", "AppDial2", "(Outgoing Line)")}),
		dial("", "Down"),
	}
	switch {
	case callee.Busy:
		frames = append(frames,
			s.frame("ChannelHangupRequest", map[string]any{"cause": 17, "tech_cause": 486, "channel": snap("Down", "AppDial2", "(Outgoing Line)")}),
			dial("BUSY", "Down"),
			s.frame("ChannelDestroyed", map[string]any{"cause": 17, "cause_txt": "User busy", "tech_cause": 486, "channel": snap("Down", "AppDial2", "(Outgoing Line)")}))
	case callee.NoAnswer:
		frames = append(frames,
			s.frame("ChannelStateChange", map[string]any{"channel": snap("Ringing", "AppDial2", "(Outgoing Line)")}),
			dial("RINGING", "Ringing"),
			s.frame("ChannelDestroyed", map[string]any{"cause": 19, "cause_txt": "User alerting, no answer", "channel": snap("Ringing", "AppDial2", "(Outgoing Line)")}))
	default:
		frames = append(frames,
			s.frame("ChannelStateChange", map[string]any{"channel": snap("Ringing", "AppDial2", "(Outgoing Line)")}),
			dial("RINGING", "Ringing"),
			s.frame("ChannelStateChange", map[string]any{"channel": snap("Up", "AppDial2", "(Outgoing Line)")}),
			dial("ANSWER", "Up"))
		if app := q.Get("app"); app != "" {
			frames = append(frames, s.frame("ChannelVarset", map[string]any{"variable": "STASISSTATUS", "value": "", "channel": snap("Up", "Stasis", app)}))
		}
	}
	s.digits.Store(id, callee.Digit)
	if callee.Busy || callee.NoAnswer {
		o.mu.Lock()
		rec.HungUp = true // gone: a later DELETE finds no channel
		o.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, snap("Down", "AppDial2", "(Outgoing Line)"))
	s.Play(frames...)
}

func (s *Server) origSeq() int {
	s.orig.mu.Lock()
	defer s.orig.mu.Unlock()
	return s.orig.seq
}

// play answers POST /ari/channels/{id}/play: 201 with the playback, then
// PlaybackStarted, and the callee's digit if it presses one.
func (s *Server) play(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	media := r.URL.Query().Get("media")
	if media == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "media: required"})
		return
	}
	rec := s.liveChannel(w, r)
	if rec == nil {
		return
	}
	o := &s.orig
	rec.Plays = append(rec.Plays, media)
	first := len(rec.Plays) == 1
	ch := chanSnap(id, rec.name, "Up", rec.caller, "Stasis", s.opts.App, rec.created)
	pb := map[string]any{"id": fmt.Sprintf("pb-%s-%d", id, len(rec.Plays)), "media_uri": media, "target_uri": "channel:" + id, "language": "en", "state": "queued"}
	o.mu.Unlock()
	writeJSON(w, http.StatusCreated, pb)
	started := map[string]any{}
	for k, v := range pb {
		started[k] = v
	}
	started["state"] = "playing"
	frames := [][]byte{s.frame("PlaybackStarted", map[string]any{"playback": started})}
	if d, ok := s.digits.Load(id); ok && first && d.(string) != "" {
		frames = append(frames, s.frame("ChannelDtmfReceived", map[string]any{"digit": d, "duration_ms": 160,
			"channel": ch}))
	}
	s.Play(frames...)
	if n := s.opts.PlaybackLength; n > 0 {
		o.mu.Lock()
		end := time.Now()
		if rec.busyUntil.After(end) {
			end = rec.busyUntil
		}
		end = end.Add(n)
		rec.busyUntil = end
		o.mu.Unlock()
		// As Asterisk sends it (a recorded PlaybackFinished): state done.
		done := map[string]any{}
		for k, v := range pb {
			done[k] = v
		}
		done["state"] = "done"
		time.AfterFunc(time.Until(end), func() {
			o.mu.Lock()
			over := rec.HungUp
			o.mu.Unlock()
			if !over {
				s.Play(s.frame("PlaybackFinished", map[string]any{"playback": done}))
			}
		})
	}
}

// hangup answers DELETE /ari/channels/{id}: 204, then the soft hangup
// request (cause 32) and ChannelDestroyed 16, as Asterisk does when an
// application hangs up.
func (s *Server) hangup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rec := s.liveChannel(w, r)
	if rec == nil {
		return
	}
	o := &s.orig
	rec.HungUp = true
	ch := chanSnap(id, rec.name, "Up", rec.caller, "Stasis", s.opts.App, rec.created)
	o.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	s.Play(s.frame("ChannelHangupRequest", map[string]any{"cause": 32, "soft": true, "channel": ch}),
		s.frame("ChannelDestroyed", map[string]any{"cause": 16, "cause_txt": "Normal Clearing", "channel": ch}))
}

// liveChannel checks a command's credentials and finds the originated
// channel it names, still up; it answers the request itself otherwise.
// On success the record is returned with s.orig.mu held.
func (s *Server) liveChannel(w http.ResponseWriter, r *http.Request) *Originated {
	if !s.authorized(r) {
		unauthorized(w)
		return nil
	}
	if s.writeRefused(w, r) {
		return nil
	}
	s.orig.mu.Lock()
	rec := s.orig.byID[r.PathValue("id")]
	if rec == nil || rec.HungUp {
		s.orig.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Channel not found"})
		return nil
	}
	return rec
}

// HangUpRemote ends an answered originated call from the far end, as a
// BYE does (o05): ChannelHangupRequest cause 16 without soft, then
// ChannelDestroyed 16. It reports whether the channel was up.
func (s *Server) HangUpRemote(id string) bool {
	s.orig.mu.Lock()
	rec := s.orig.byID[id]
	if rec == nil || rec.HungUp {
		s.orig.mu.Unlock()
		return false
	}
	rec.HungUp = true
	ch := chanSnap(id, rec.name, "Up", rec.caller, "Dial", "", rec.created)
	s.orig.mu.Unlock()
	s.Play(s.frame("ChannelHangupRequest", map[string]any{"cause": 16, "channel": ch}),
		s.frame("ChannelDestroyed", map[string]any{"cause": 16, "cause_txt": "Normal Clearing", "channel": ch}))
	return true
}
