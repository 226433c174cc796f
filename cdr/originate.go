package cdr

import "time"

// Origin is what kanca knows of a call it places on request (Bulutfon's
// automatic calls and call_and_bridge, an alert): the PBX does not say why
// a channel appeared, so the dialer tells the tracker beforehand with a
// KindOriginate input naming the channel id it will ask the PBX to use.
type Origin struct {
	// Number, the PBX number the call is placed from, and Callee, the
	// number called, are read as any number a PBX shows: give international
	// digits with their + (+447700900123), or they are taken for national.
	Number string `json:",omitzero"`
	Callee string `json:",omitzero"`
	// AdditionalData and CallbackURL are the request's, nil when not given.
	AdditionalData *string `json:",omitzero"`
	CallbackURL    *string `json:",omitzero"`
}

// Autodial marks the events of a call placed on request.
type Autodial struct {
	AdditionalData *string
	CallbackURL    *string
}

// pendingOrigin waits for its channel to appear.
type pendingOrigin struct {
	o  Origin
	at time.Time
}

// originate records that the channel in.Channel.ID will be a call placed
// on request. A channel that never appears (the PBX refused the request)
// is forgotten at the maximum call duration.
func (t *Tracker) originate(in Input) {
	if in.Origin == nil || in.Channel.ID == "" {
		return
	}
	if t.origins == nil {
		t.origins = make(map[string]pendingOrigin)
	}
	t.origins[in.Channel.ID] = pendingOrigin{o: *in.Origin, at: in.Time}
}

// beginOriginated makes c, whose first leg l was announced by a
// KindOriginate, an outbound call from the PBX number it was placed from.
func (t *Tracker) beginOriginated(c *call, o Origin, out []Event) []Event {
	c.dir = Outbound
	c.number = t.num.normalize(o.Number)
	c.caller = c.number
	c.callee = t.num.normalize(o.Callee)
	c.autodial = &Autodial{AdditionalData: o.AdditionalData, CallbackURL: o.CallbackURL}
	return t.announce(c, c.start, out)
}

// expireOrigins forgets announced channels that never appeared.
func (t *Tracker) expireOrigins(limit time.Time) {
	for id, p := range t.origins {
		if p.at.Before(limit) {
			delete(t.origins, id)
			t.finished = append(t.finished, id)
		}
	}
}

// parksForKanca reports whether app is where a placed call waits for
// kanca's commands rather than dialplan.
func parksForKanca(app string) bool {
	return app == "Stasis" || app == "park" || app == "AppDial2" || app == "AppDial"
}

// placedDisposition is hangupDisposition for a call kanca placed, whose
// first leg is the called person's: their hangup request is the far end's
// (a BYE once up, a refusal before), a soft one is kanca's own, and no
// request before an answer is the PBX giving up ringing.
func (c *call) placedDisposition() string {
	up := !c.origin.up.IsZero()
	switch {
	case c.callerHungUp && up:
		return "recv_bye"
	case c.callerHungUp:
		return "recv_refuse"
	case up:
		return "send_bye"
	default:
		return "send_cancel"
	}
}
