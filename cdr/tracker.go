// Package cdr is kanca's call tracker: PBX events in, call events and call
// detail records out. It does no I/O and has no clock of its own: every
// time it reports comes from the events it is fed, so a replayed trace
// gives the same webhooks as the live call did.
package cdr

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Tracker follows the legs of every call and says what happened to the
// call as a whole. It is not safe for concurrent use: feed it from one
// goroutine, in the order the PBX sent the events.
type Tracker struct {
	cfg     Config
	num     numbers
	legs    map[string]*leg  // by leg id
	locals  map[string]*leg  // Local channel halves by name, to pair ;1 with ;2
	calls   map[string]*call // by server + linked id
	bridges map[string]*call // bridge id -> the call that owns it
	sweepAt time.Time
	// finished lists channels whose inputs stopped mattering since the
	// last Finished call, for a journal of inputs to drop.
	finished []string
	// origins are channels announced by KindOriginate, not yet created.
	origins map[string]pendingOrigin
}

// leg is one channel: the caller's, or one the call dialled.
type leg struct {
	id, name string
	c        *call // nil while we wait for the Dial that says whose it is
	created  time.Time
	context  string // where it started
	exten    string
	state    string
	caller   string
	up       time.Time
	// upListed: up is where a list showed the leg up, not when the PBX
	// says it answered (an estimate).
	upListed bool
	// crossed: a gap in the stream hid part of its life (adopted from a
	// list, or it lived through a reconnect).
	crossed bool
	dialed  bool  // the call dialled it (not the caller's own leg)
	step    *step // the routing step whose dial created it, or that it took over
	local   bool  // a Local channel half
	// consult: another callee dialled it (a consultation before an
	// attended transfer); it is nobody's step until the call is joined to it.
	consult   bool
	dialnum   string // what was dialled to reach it, when the PBX says
	retrieves string // the parking space it asked to take a call from
	own       string // the number it presented when it appeared: an extension's own
	// bridge is the bridge it entered last, whether or not its call was
	// known then (see heardConsultation).
	bridge string
}

type stepKind uint8

const (
	stepNone stepKind = iota
	stepMenu
	stepExtension
	stepGroup
	stepExternal
	stepPark      // the call waits in a parking space
	stepVoicemail // the PBX's voicemail took the call
)

type step struct {
	kind    stepKind
	dest    string
	context string // the context that started it, for context-started steps
	// left: the caller went on from the context that started it to
	// another destination (a group's failover): its Dials no longer
	// ring the group's members.
	left     bool
	start    time.Time
	answer   time.Time
	hangup   time.Time
	redirect string
	target   string
}

// call is what a webhook receiver sees as one call.
type call struct {
	key, uuid, server string
	origin            *leg
	legs              int // attached legs still alive
	bridges           []string
	channels          []string // every leg ever attached, for Finished
	start             time.Time
	answer            time.Time // first answer of anything, a menu included
	connected         bool      // a person (extension or outside party) answered
	seq               int

	inside    bool   // started by an extension: silent unless it goes outside
	dir       string // "", IN, OUT
	announced bool
	number    string // the PBX number that owns the call
	caller    string
	callee    string

	steps       []*step
	lastContext string
	fax         bool
	faxSent     bool
	recorded    bool
	recordFile  string // where the PBX says it keeps the recording
	dialStatus  string // the caller leg's DIALSTATUS, else the last peer's final status

	autodial *Autodial // placed on request (KindOriginate); nil otherwise
	digit    string    // autodial: the first key the called person pressed

	hungUp       bool // a hangup request reached the caller's leg
	callerHungUp bool // ...and it came from the caller's side (not soft)
	callerUp     bool // the caller's leg was up at that request
	reqCause     int
	endCause     int      // the caller leg's cause at destruction
	endCauseName string   // as the PBX named it
	disposition  string   // as the PBX stated it
	answerListed bool     // the answer kanca knows of came from a channel list
	recovered    bool     // some of its inputs came from the PBX's books after a gap
	estimated    []string // fields the books could only estimate (Input.Estimated)
	endLive      bool     // the caller's leg ended by a live input, not the books'
	// heard is the latest time an input told of it: a leg found gone
	// after a gap ended no earlier, whatever the books told after the
	// moment the connection dropped.
	heard time.Time
}

// NewTracker returns a tracker that reads dialplans as cfg says.
func NewTracker(cfg Config) *Tracker {
	return &Tracker{
		cfg:     cfg,
		num:     newNumbers(cfg.CountryCode, cfg.ExtensionMaxDigits),
		legs:    make(map[string]*leg),
		locals:  make(map[string]*leg),
		calls:   make(map[string]*call),
		bridges: make(map[string]*call),
	}
}

// Calls returns how many calls are being followed.
func (t *Tracker) Calls() int { return len(t.calls) }

// Needs reports whether Handle would act on in: it creates a channel or
// concerns one the tracker follows. A journal that restores the tracker
// after a restart must keep what it needs, and only that.
func (t *Tracker) Needs(in Input) bool {
	return in.Kind == KindCreated || in.Kind == KindOriginate || t.Follows(in.Channel.ID)
}

// Finished appends to dst the channels whose inputs stopped mattering
// since the last call: every channel of a call that ended, and channels
// dropped before any call claimed them. Feeding a new tracker the inputs
// Needs kept, less those of finished channels, in their order, restores
// the calls still live: a call's inputs are dropped only all together,
// once it has ended.
func (t *Tracker) Finished(dst []string) []string {
	dst = append(dst, t.finished...)
	t.finished = t.finished[:0]
	return dst
}

// Handle feeds one PBX event and returns the call events it completes, in
// the order they happened (often none).
func (t *Tracker) Handle(in Input) []Event {
	out := t.apply(in, nil)
	if !in.Time.IsZero() && !in.Time.Before(t.sweepAt) {
		out = t.Expire(in.Time, out)
		t.sweepAt = in.Time.Add(time.Minute)
	}
	return out
}

func (t *Tracker) apply(in Input, out []Event) []Event {
	if l := t.legs[in.Channel.ID]; l != nil && (in.Resumed || in.Adopted) {
		l.crossed = true
	}
	switch in.Kind {
	case KindCreated:
		out = t.created(in, out)
		if l := t.legs[in.Channel.ID]; in.Books && l != nil && l.c != nil {
			l.c.recover(in)
		}
		return out
	case KindOriginate:
		t.originate(in)
		return out
	case KindPlayed:
		return out
	}
	if l := t.legs[in.Channel.ID]; l != nil {
		if in.Books && l.c != nil {
			l.c.recover(in)
		}
		if l.c != nil && in.Kind != KindGone && in.Time.After(l.c.heard) {
			l.c.heard = in.Time
		}
		return t.update(l, in, out)
	}
	return out
}

// Restore feeds a new tracker a journal: the inputs Needs kept, less those
// of finished channels, in their order. It does not report the events
// they make again (they were stored with them), and expires nothing on
// the way: the next Handle or Expire does, at the PBX's time then. It
// returns the channels that finished along the way.
func (t *Tracker) Restore(journal []Input) (finished []string) {
	for _, in := range journal {
		t.apply(in, nil)
	}
	return t.Finished(nil)
}

// Follows reports whether the tracker follows the channel.
func (t *Tracker) Follows(channelID string) bool { return t.legs[channelID] != nil }

// Expire ends every call older than the maximum call duration at now, and
// forgets legs that waited that long for a call to claim them. Handle calls
// it as event time passes; a daemon also calls it on a quiet PBX.
func (t *Tracker) Expire(now time.Time, out []Event) []Event {
	limit := now.Add(-t.cfg.MaxCallDuration)
	for _, c := range t.calls {
		if c.start.Before(limit) {
			out = t.finish(c, now, false, true, out)
		}
	}
	for _, l := range t.legs {
		if l.c == nil && l.created.Before(limit) {
			t.forget(l)
		}
	}
	t.expireOrigins(limit)
	return out
}

func (t *Tracker) created(in Input, out []Event) []Event {
	ch := &in.Channel
	if l := t.legs[ch.ID]; l != nil {
		l.state = ch.State
		if in.Adopted && l.c != nil {
			// The books began this leg and the list finds it in an
			// application no row names (Asterisk's CEL has none for
			// ReceiveFAX), and no later event may.
			out = t.runs(l.c, *ch, faxBegun(l, in), out)
		}
		return out
	}
	l := &leg{
		id: ch.ID, name: ch.Name, created: ch.Created, context: ch.Context, exten: ch.Exten,
		state: ch.State, caller: ch.CallerNumber, own: ch.CallerNumber, local: strings.HasPrefix(ch.Name, "Local/"),
	}
	if l.created.IsZero() {
		l.created = in.Time
	}
	t.legs[ch.ID] = l
	if l.local {
		t.locals[l.name] = l
	}
	l.crossed = in.Adopted || in.Resumed
	if ch.State == "Up" {
		l.up = l.created
		l.upListed = in.Adopted
		if !ch.Answered.IsZero() {
			l.up, l.upListed = ch.Answered, false
		}
	}

	if _, ok := t.origins[ch.ID]; ok {
		// A call kanca placed: its own call, whatever the PBX links it to.
		return t.begin(l, in, ch.ID, out)
	}
	if ch.LinkedID != "" && ch.LinkedID != ch.ID {
		if c := t.calls[callKey(in.Server, ch.LinkedID)]; c != nil {
			t.attach(l, c)
			return t.joined(c, l, in, out)
		}
		if o := t.legs[ch.LinkedID]; o != nil && o.c != nil {
			// FreeSWITCH links a leg to the leg that originated it, which
			// may itself be a callee's (a consultation before a transfer).
			t.attach(l, o.c)
			return t.joined(o.c, l, in, out)
		}
		// The caller's leg is gone or was never seen (kanca started
		// mid-call): this leg stands for the call.
		return t.begin(l, in, ch.LinkedID, out)
	}
	if ch.LinkedID == "" {
		if sib := t.localSibling(l); sib != nil {
			if sib.c != nil {
				t.attach(l, sib.c)
			}
			return out
		}
		// An outgoing leg starts Down and waits for the Dial that made it.
		if ch.State == "Down" {
			return out
		}
	}
	return t.begin(l, in, ch.ID, out)
}

// callOf is the call in's channel links to, by its linked id: the call
// itself, or the call of the leg it names (FreeSWITCH links a leg to the
// leg that originated it); nil when kanca follows neither.
func (t *Tracker) callOf(in Input) *call {
	linked := in.Channel.LinkedID
	if linked == "" || linked == in.Channel.ID {
		return nil
	}
	if c := t.calls[callKey(in.Server, linked)]; c != nil {
		return c
	}
	if o := t.legs[linked]; o != nil {
		return o.c
	}
	return nil
}

// localSibling finds the other half of a Local channel pair (;1 and ;2).
func (t *Tracker) localSibling(l *leg) *leg {
	if !l.local || len(l.name) < 2 || l.name[len(l.name)-2] != ';' {
		return nil
	}
	var half string
	switch l.name[len(l.name)-1] {
	case '1':
		half = "2"
	case '2':
		half = "1"
	default:
		return nil
	}
	return t.locals[l.name[:len(l.name)-1]+half]
}

// forget drops a leg the tracker no longer needs.
func (t *Tracker) forget(l *leg) {
	if l.c == nil {
		t.finished = append(t.finished, l.id)
	}
	delete(t.legs, l.id)
	if l.local && t.locals[l.name] == l {
		delete(t.locals, l.name)
	}
}

func callKey(server, linked string) string { return server + "\x00" + linked }

// begin starts a call whose first leg is l.
func (t *Tracker) begin(l *leg, in Input, linked string, out []Event) []Event {
	c := &call{
		key:    callKey(in.Server, linked),
		uuid:   CallUUID(in.Server, linked),
		server: in.Server,
		origin: l,
		start:  l.created,
	}
	t.calls[c.key] = c
	t.attach(l, c)
	if !l.up.IsZero() {
		c.answer = l.up
		c.answerListed = l.upListed
	}
	c.lastContext = l.context
	if p, ok := t.origins[l.id]; ok {
		delete(t.origins, l.id)
		return t.beginOriginated(c, p.o, out)
	}
	switch {
	case matchAny(t.cfg.Contexts.Inbound, l.context):
	case in.Adopted && !l.local && l.caller != "" && !t.num.isExtension(l.caller) && t.didVar(in.Channel) != "":
		// Adopted, its context is where it runs now: a call that came
		// in from outside and was moved in the gap (a blind transfer)
		// runs in an extensions' context, and the DID variable the
		// inbound dialplan set says it came in.
	case matchAny(t.cfg.Contexts.Internal, l.context) || t.num.isExtension(l.caller):
		c.inside = true
		return t.routeAdopted(c, in, out)
	}
	c.dir = Inbound
	c.caller = t.num.normalize(l.caller)
	did := t.didOf(l.exten, in.Channel.Vars)
	if in.Adopted {
		// Mid-call, the extension is where the dialplan sent the call
		// (an extension, a menu), not where it arrived: what the PBX
		// kept of the arrival comes first.
		did = cmp.Or(t.arrivedOn(in.Channel), did)
	}
	if did != "" {
		c.number = did
		c.callee = did
		out = t.announce(c, c.start, out)
	}
	return t.routeAdopted(c, in, out)
}

// arrivedOn is the public number an adopted inbound leg arrived on, as
// the PBX kept it: a DID variable, else the number it was dialled as.
func (t *Tracker) arrivedOn(ch Channel) string {
	if did := t.didVar(ch); did != "" {
		return did
	}
	if _, _, ok := digits(ch.DialedNumber); ok {
		return t.num.normalize(ch.DialedNumber)
	}
	return ""
}

// didVar is the public number a DID variable of ch holds, "" if none.
func (t *Tracker) didVar(ch Channel) string {
	for _, name := range t.cfg.DIDVariables {
		if v := ch.Vars[name]; v != "" {
			if _, _, ok := digits(v); ok {
				return t.num.normalize(v)
			}
		}
	}
	return ""
}

// routeAdopted reads where an adopted call's first leg is now in the
// dialplan (a Dial to an extension, to an outside number, a queue) as its
// routing so far: its earlier steps are lost with the gap.
func (t *Tracker) routeAdopted(c *call, in Input, out []Event) []Event {
	if !in.Adopted {
		return out
	}
	// The queue the PBX says the caller entered: an agent's bridge it
	// handed the caller to is no step of its own.
	out = t.queueHid(c, in.Channel, out)
	if in.Channel.App == "" {
		return out
	}
	if in.Channel.Presented != "" {
		in.Channel.CallerNumber = in.Channel.Presented
	}
	// What it runs began in the gap, and no later event need say so
	// again (Asterisk's ReceiveFAX sends none).
	out = t.runs(c, in.Channel, faxBegun(c.origin, in), out)
	return t.route(c, in, out)
}

// joined completes an adopted leg that joined call c by its linked id: it
// is one the call dialled (the caller's leg was adopted first), for the
// call's current step, and a leg the PBX lists as up has answered.
func (t *Tracker) joined(c *call, l *leg, in Input, out []Event) []Event {
	if !in.Adopted || l == c.origin || l.dialed || l.consult {
		return out
	}
	if l.dialnum == "" && in.Channel.DialedNumber != "" {
		l.dialnum = in.Channel.DialedNumber
	}
	if t.dialedByCallee(c, in.Channel.DialedBy) {
		// Originated by one of the call's callees: its consultation.
		l.consult = true
		return out
	}
	l.dialed = true
	l.step = c.current()
	if !l.up.IsZero() {
		if c.answer.IsZero() {
			c.answerListed = l.upListed
		}
		out = t.answered(c, l, l.up, out)
	}
	return out
}

// dialedByCallee says whether the leg id names (FreeSWITCH's originator)
// is one of c's callees: a leg of c other than its caller's and not a
// Local channel, or one that already ended, as a transferer's does
// before a list that lags its events adopts the consultation it made.
func (t *Tracker) dialedByCallee(c *call, id string) bool {
	if id == "" || c.origin == nil || id == c.origin.id {
		return false
	}
	if by := t.legs[id]; by != nil {
		return by.c == c && !by.local
	}
	return slices.Contains(c.channels, id)
}

// didOf finds the public number an inbound call dialled.
func (t *Tracker) didOf(exten string, vars map[string]string) string {
	if _, _, ok := digits(exten); ok {
		return t.num.normalize(exten)
	}
	for _, name := range t.cfg.DIDVariables {
		if v := vars[name]; v != "" {
			if _, _, ok := digits(v); ok {
				return t.num.normalize(v)
			}
		}
	}
	return ""
}

func (t *Tracker) attach(l *leg, c *call) {
	if l.c != nil {
		return
	}
	l.c = c
	c.legs++
	c.channels = append(c.channels, l.id)
	if sib := t.localSibling(l); sib != nil && sib.c == nil {
		t.attach(sib, c)
	}
}

func (t *Tracker) update(l *leg, in Input, out []Event) []Event {
	ch := &in.Channel
	if ch.State != "" {
		l.state = ch.State
	}
	if ch.CallerNumber != "" {
		l.caller = ch.CallerNumber
	}
	if l.c == nil && in.Adopted {
		// A leg that waited for the dial that made it, which a gap hid:
		// a channel list names its call now.
		if c := t.callOf(in); c != nil {
			t.attach(l, c)
			t.listedConsultation(in, l)
			t.heardConsultation(l)
			out = t.joined(c, l, in, out)
		}
	} else {
		t.listedConsultation(in, l)
	}
	c := l.c
	if c != nil && ch.Parked != "" && l == c.origin {
		c.nameParked(ch.Parked)
	}
	switch in.Kind {
	case KindState:
		if ch.State == "Up" && l.up.IsZero() {
			l.up = in.Time
			switch {
			case c == nil:
			case in.Adopted && l != c.origin && !l.dialed && !l.consult:
				// A leg of the call that a gap hid dialling and answering
				// (its creation was heard, its dial was not): it answered
				// for the call's current step, as an adopted leg does.
				out = t.joined(c, l, in, out)
			default:
				if in.Adopted && c.answer.IsZero() {
					// Placed where the list was, unless the PBX said when.
					c.answerListed = in.Channel.Answered.IsZero()
				}
				out = t.answered(c, l, in.Time, out)
			}
		}
	case KindDialplan:
		if c == nil {
			// A leg nobody dialled that runs real dialplan (an originated
			// call) is a call of its own. One still Down runs a callee's
			// predial routine (Asterisk's Dial b() option, FreePBX's on
			// every Dial): Dial runs it before the event naming the caller.
			if l.local || isDialPseudoApp(ch.App) || ch.State == "Down" {
				return out
			}
			out = t.begin(l, in, l.id, out)
			c = l.c
		}
		out = t.runs(c, *ch, in.Time, out)
		if in.Adopted && l == c.origin {
			// A move the gap hid from a queue that handed the caller to
			// an agent: the queue it went through first.
			out = t.queueHid(c, *ch, out)
		}
		if sp := retrievedSpace(ch.App, ch.AppData); sp != "" && c.dir == "" {
			l.retrieves = sp
		}
		// A call placed on request waiting in kanca's own application
		// (Stasis, park) is not routed anywhere.
		if l == c.origin && (c.autodial == nil || !parksForKanca(ch.App)) {
			out = t.route(c, in, out)
		}
	case KindDTMF:
		if c != nil && c.autodial != nil && l == c.origin && c.digit == "" {
			c.digit = in.Digit
		}
	case KindVar:
		if c == nil {
			return out
		}
		out = t.variable(c, l, in, out)
	case KindDial:
		out = t.dial(l, in, out)
	case KindBridgeEnter:
		l.bridge = in.Bridge
		var peer *leg
		if in.Other != nil {
			peer = t.legs[in.Other.ID]
		}
		owner := t.bridges[in.Bridge]
		if c == nil {
			if owner != nil {
				t.attach(l, owner)
			}
			return out
		}
		if owner == nil {
			owner = c
			t.bridges[in.Bridge] = c
			c.bridges = append(c.bridges, in.Bridge)
		}
		out = t.bridged(c, l, owner, peer, in.Time, out)
		if in.Adopted {
			out = t.listedBridge(l.c, l, peer, out)
		}
	case KindTransfer:
		if c != nil && c.dir != "" {
			out = t.transfer(c, in, out)
		}
	case KindPark:
		if c != nil && l == c.origin {
			out = t.park(c, in.Target, in.Time, out)
		}
	case KindHangupRequest:
		if c != nil && l == c.origin && !c.hungUp {
			c.hungUp = true
			c.callerHungUp = !in.Soft
			c.callerUp = ch.State == "Up" || (ch.State == "" && !l.up.IsZero())
			c.reqCause = in.Cause
		}
	case KindFax:
		if c != nil {
			out = t.faxStart(c, in.Time, out)
		}
	case KindRecord:
		// A message voicemail records is no recording of the call.
		if c != nil && !isVoicemail(in.Channel.App, in.Channel.AppData) {
			c.recordTo(in.Channel.Recording)
		}
	case KindMenu:
		// A PBX may say twice that a call entered the same menu
		// (FreeSWITCH: the ivr application, then menu::enter).
		if c != nil && l == c.origin {
			out = t.menu(c, t.menuOf(in), "", in.Time, out)
		}
	case KindQueue:
		if c != nil && l == c.origin {
			out = t.group(c, in.Detail, "", in.Time, out)
		}
	case KindDestroyed, KindGone:
		t.forget(l)
		if c == nil {
			return out
		}
		if l == c.origin {
			c.endLive = !in.Books
			c.endCause = in.Cause
			c.endCauseName = in.CauseName
			c.disposition = in.Disposition
			if !c.hungUp {
				c.callerUp = !l.up.IsZero()
			}
		}
		c.legs--
		if c.legs <= 0 {
			end := in.Time
			if in.Kind == KindGone && c.heard.After(end) {
				end = c.heard
			}
			out = t.finish(c, end, in.Kind == KindGone, false, out)
		}
	}
	return out
}

// recover notes that in, from the PBX's books, told c something.
func (c *call) recover(in Input) {
	c.recovered = true
	for _, f := range in.Estimated {
		if !slices.Contains(c.estimated, f) {
			c.estimated = append(c.estimated, f)
		}
	}
}

// answered notes that leg l of call c went up at at.
func (t *Tracker) answered(c *call, l *leg, at time.Time, out []Event) []Event {
	if l == c.origin {
		if c.answer.IsZero() {
			c.answer = at
		}
		if c.autodial != nil {
			// The leg kanca placed is the called person's.
			c.connected = true
		}
		if s := c.current(); s != nil && s.byPBX() && s.answer.IsZero() {
			s.answer = at
		}
		return out
	}
	if !l.dialed {
		return out
	}
	if s := l.step; s != nil && s.byPBX() {
		// A leg the PBX answers for itself: FreeSWITCH's loopback to
		// voicemail. No person took the call.
		if s.answer.IsZero() {
			s.answer = at
		}
		return out
	}
	c.connected = true
	if c.answer.IsZero() && c.inside {
		// An extension's outbound call is answered when the far end is.
		c.answer = at
	}
	s := l.step
	if s == nil {
		return out
	}
	number := l.dialled()
	kind, dest := t.destination(number)
	switch {
	case s != c.current() || !c.announced || number == "" || kind == s.kind && dest == s.dest:
	case s.kind == stepGroup:
		// The callflow names the member or agent who took the group's
		// call: the group hands over to a step of theirs.
		if s.answer.IsZero() {
			s.answer = at
		}
		l.step = &step{kind: kind, dest: dest, start: at}
		t.push(c, l.step, "", nil)
	case s.kind == stepExtension:
		// Someone else answered the extension's call: it forwarded it
		// (a 302 the PBX followed on its own).
		return t.connect(c, l, at, out)
	}
	if l.step.answer.IsZero() {
		l.step.answer = at
	}
	return out
}

// Channel variables the tracker reads besides the configured DID
// variables (Config.DIDVariables).
const (
	varDialStatus = "DIALSTATUS"          // Asterisk's Dial result on the caller's leg
	varRecording  = "MIXMONITOR_FILENAME" // the file MixMonitor records to
)

// ReadsVariable says whether the tracker reads a channel variable set on
// a leg (KindVar): a source may drop every other variable's updates (ARI
// ChannelVarset frames) before decoding them. Inherited names (_X, __X)
// are the variable X.
func (c Config) ReadsVariable(name string) bool {
	name = strings.TrimLeft(name, "_")
	if name == varDialStatus || name == varRecording {
		return true
	}
	for _, v := range c.DIDVariables {
		if strings.TrimLeft(v, "_") == name {
			return true
		}
	}
	return false
}

func (t *Tracker) variable(c *call, l *leg, in Input, out []Event) []Event {
	name := strings.TrimLeft(in.Var, "_")
	switch {
	case name == varDialStatus && l == c.origin && in.Value != "":
		c.dialStatus = in.Value
	case name == varRecording && in.Value != "":
		c.recorded = true
		c.recordFile = in.Value
	case l == c.origin && c.dir == Inbound && !c.announced && in.Value != "":
		for _, v := range t.cfg.DIDVariables {
			if strings.TrimLeft(v, "_") == name {
				if _, _, ok := digits(in.Value); ok {
					c.number = t.num.normalize(in.Value)
					c.callee = c.number
					out = t.announce(c, c.start, out)
				}
				break
			}
		}
	}
	return out
}

func (t *Tracker) dial(peer *leg, in Input, out []Event) []Event {
	var c *call
	var caller *leg
	if in.Other != nil {
		caller = t.legs[in.Other.ID]
	}
	if caller != nil {
		c = caller.c
	}
	if c == nil {
		c = peer.c
	}
	if c == nil {
		return out
	}
	if peer.c == nil {
		t.attach(peer, c)
	}
	if peer.c != c {
		if c.dir != "" && peer.adoptable() {
			// An extension that called in on its own (a pickup code)
			// takes this call.
			return t.adopt(c, peer, in.Time, out)
		}
		return out // a leg of another call (a transfer joined them): not ours to judge
	}
	if in.Books && caller != nil && caller == c.origin && caller.crossed && c.current() == nil && !peer.dialed {
		// The books told a leg the adopted caller dialled in the gap,
		// but not the application that dialled it: that is in the
		// caller's own record, written when the caller's leg ends
		// (FreeSWITCH's files). The number it dialled is where the call
		// went first.
		out = t.redirect(c, dialNumber(in.DialString), in.Time, out)
	}
	if !peer.dialed && !peer.consult && peer != c.origin {
		if caller != nil && caller != c.origin && !caller.local {
			peer.consult = true
		} else {
			peer.dialed = true
			peer.step = c.current()
		}
	}
	if peer.dialnum == "" && in.DialString != "" {
		peer.dialnum = dialNumber(in.DialString)
	}
	switch in.DialStatus {
	case "ANSWER":
		if peer.up.IsZero() {
			peer.up = in.Time
		}
		out = t.answered(c, peer, in.Time, out)
	case "BUSY", "NOANSWER", "CONGESTION", "CHANUNAVAIL":
		c.dialStatus = in.DialStatus
	}
	if in.Forward != "" && caller != nil && caller == c.origin {
		// The callee forwarded the call (a 302, call forwarding): the call
		// goes on to where it said.
		prev := c.current()
		number := dialNumber(in.Forward)
		out = t.redirect(c, number, in.Time, out)
		// Asterisk announces the new callee's Dial before the forward:
		// it belongs to the new step.
		if s := c.current(); s != prev {
			for _, id := range c.channels {
				if m := t.legs[id]; m != nil && m.c == c && m.step == prev && m.up.IsZero() && m.number() == number {
					m.step = s
				}
			}
		}
	}
	return out
}

func (c *call) current() *step {
	if len(c.steps) == 0 {
		return nil
	}
	return c.steps[len(c.steps)-1]
}

// route reads one dialplan application of the caller's leg for where the
// call goes next.
func (t *Tracker) route(c *call, in Input, out []Event) []Event {
	ch := &in.Channel
	app := strings.ToLower(ch.App)
	newContext := ch.Context != c.lastContext
	c.lastContext = ch.Context
	cur := c.current()
	if newContext && cur != nil && cur.context != "" && cur.context != ch.Context && ch.Exten != "s" {
		// Not a routine it runs (Macro, Gosub: at s) but a destination.
		cur.left = true
	}
	switch {
	case app == "dial" || app == "bridge":
		targets := firstTried(parseDial(app, ch.AppData))
		if len(targets) == 0 {
			return out
		}
		if slices.ContainsFunc(targets, func(tg target) bool { return tg.app == "voicemail" }) {
			return t.voicemail(c, in.Time, out)
		}
		targets = slices.DeleteFunc(targets, func(tg target) bool { return tg.app != "" })
		if len(targets) == 0 {
			return out
		}
		if i := slices.IndexFunc(targets, func(tg target) bool { return tg.followMe }); i >= 0 && !c.inside {
			return t.extension(c, targets[i].number, in.Time, out)
		}
		// Outside numbers alone make a call outbound or forward it
		// outside; beside an extension they are a ring group's members.
		if !slices.ContainsFunc(targets, func(tg target) bool { return !t.isExternal(tg) }) {
			return t.external(c, ch, targets[0].number, in.Time, out)
		}
		if c.inside {
			return out
		}
		// A ring group's context already opened its step: its Dials ring
		// members of that group, from its context or from a routine it
		// runs (FreePBX's Macro(dial) in macro-dial,s), one at a time or
		// all at once.
		if cur != nil && cur.kind == stepGroup && cur.context != "" && !cur.left &&
			(cur.context == ch.Context || ch.Exten == "s") {
			return out
		}
		switch {
		case len(targets) > 1:
			return t.group(c, ch.Exten, "", in.Time, out)
		case targets[0].group:
			return t.group(c, targets[0].number, "", in.Time, out)
		}
		return t.extension(c, targets[0].number, in.Time, out)
	case c.inside:
		return out
	case isVoicemail(app, ch.AppData):
		return t.voicemail(c, in.Time, out)
	case app == "followme":
		// Asterisk's FollowMe(ID): ID's numbers, rung through Local
		// channels; ID is the extension the call was offered to.
		id, _, _ := strings.Cut(ch.AppData, ",")
		return t.extension(c, strings.TrimSpace(id), in.Time, out)
	case app == "park":
		lot, _, _ := strings.Cut(ch.AppData, ",")
		return t.park(c, strings.TrimSpace(lot), in.Time, out)
	case app == "valet_park":
		// valet_park LOT auto ... parks in a free space; valet_park LOT
		// SPACE parks in (or takes a call from) that space.
		if f := strings.Fields(ch.AppData); len(f) >= 2 && f[1] != "auto" {
			return t.park(c, f[1], in.Time, out)
		}
		return t.park(c, "", in.Time, out)
	case app == "fifo":
		// mod_fifo holds a caller until a consumer takes it: FreeSWITCH's
		// stock dialplan parks calls this way (5900, park+N, a phone's
		// park orbit), and a consumer's "fifo NAME out" retrieves them.
		if space, entered := fifoNode(ch.AppData); entered {
			return t.park(c, space, in.Time, out)
		}
		return out
	case app == "queue" || app == "callcenter":
		name, _, _ := strings.Cut(ch.AppData, ",")
		name, _, _ = strings.Cut(name, "@")
		return t.group(c, strings.TrimSpace(name), "", in.Time, out)
	case newContext && matchAny(t.cfg.Contexts.Queue, ch.Context),
		newContext && matchAny(t.cfg.Contexts.Group, ch.Context):
		return t.group(c, ch.Exten, ch.Context, in.Time, out)
	case newContext && matchAny(t.cfg.Contexts.Fax, ch.Context), ch.Exten == "fax" && newContext:
		return t.faxStart(c, in.Time, out)
	case newContext && matchAny(t.cfg.Contexts.Menu, ch.Context) && !strings.HasPrefix(ch.Context, "from-"):
		// from-*: an entry context (FreePBX's from-did-direct-ivr, the
		// way from a menu to the extension keyed), whatever its name.
		return t.menu(c, menuName(ch.Context), ch.Context, in.Time, out)
	case isMenuApp(app) && !promptOnly(ch.Context):
		if cur != nil && cur.kind == stepMenu && cur.context == ch.Context {
			return out
		}
		return t.menu(c, menuName(ch.Context), ch.Context, in.Time, out)
	}
	return out
}

// voicemail notes that c's caller reached voicemail.
func (t *Tracker) voicemail(c *call, at time.Time, out []Event) []Event {
	if cur := c.current(); cur != nil && cur.kind == stepVoicemail {
		return out
	}
	s := &step{kind: stepVoicemail, dest: "voicemail", start: at}
	if !c.origin.up.IsZero() {
		s.answer = at
	}
	return t.push(c, s, "", out)
}

// menuName is the number of a numbered menu context (ivr-3 -> 3), else
// the context's name.
func menuName(context string) string {
	if i := strings.LastIndexAny(context, "-_"); i >= 0 {
		if _, _, ok := digits(context[i+1:]); ok {
			return context[i+1:]
		}
	}
	return context
}

func (t *Tracker) named(name string) string {
	if n, ok := t.cfg.Names[name]; ok {
		return n
	}
	return name
}

// menuOf is the name of the menu in enters. A menu named by an id no
// caller sees (FusionPBX names its menus by uuid) is known by the number
// the caller reached it on, unless the admin named it.
func (t *Tracker) menuOf(in Input) string {
	name := in.Detail
	if _, named := t.cfg.Names[name]; named || !isUUID(name) {
		return name
	}
	if _, _, ok := digits(in.Channel.Exten); ok {
		return in.Channel.Exten
	}
	return name
}

// isUUID says whether s is a uuid in its usual spelling (8-4-4-4-12 hex).
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

func (t *Tracker) menu(c *call, name, context string, at time.Time, out []Event) []Event {
	if cur := c.current(); cur != nil && cur.kind == stepMenu && cur.dest == t.named(name) {
		return out // back in the menu from a routine it ran
	}
	s := &step{kind: stepMenu, dest: t.named(name), context: context, start: at}
	if !c.origin.up.IsZero() {
		s.answer = at
	}
	return t.push(c, s, CallInitMenu, out)
}

func (t *Tracker) group(c *call, name, context string, at time.Time, out []Event) []Event {
	dest := t.named(name)
	if cur := c.current(); cur != nil && cur.kind == stepGroup && cur.dest == dest {
		return out
	}
	return t.push(c, &step{kind: stepGroup, dest: dest, context: context, start: at}, CallInitGroup, out)
}

func (t *Tracker) extension(c *call, ext string, at time.Time, out []Event) []Event {
	dest := t.named(ext)
	if cur := c.current(); cur != nil && cur.kind == stepExtension && cur.dest == dest {
		// The same step: Asterisk repeats the running Dial when a
		// transfer moves the channel before its new application starts.
		return out
	}
	ev := CallInitExtension
	if c.reached(stepExtension, dest) {
		ev = "" // an extension taking the call back is told once
	}
	return t.push(c, &step{kind: stepExtension, dest: dest, start: at}, ev, out)
}

// reached says whether an earlier step of c went to dest.
func (c *call) reached(kind stepKind, dest string) bool {
	for _, s := range c.steps {
		if s.kind == kind && s.dest == dest {
			return true
		}
	}
	return false
}

// external handles a dial to a number outside the PBX: an extension's call
// becomes an outbound call; an inbound call is forwarded outside.
func (t *Tracker) external(c *call, ch *Channel, number string, at time.Time, out []Event) []Event {
	dest := t.num.normalize(number)
	if c.inside && c.dir == "" {
		c.dir = Outbound
		c.number = t.num.normalize(ch.CallerNumber)
		c.caller = c.number
		c.callee = dest
		out = t.announce(c, at, out)
	}
	if c.dir == "" {
		return out
	}
	if cur := c.current(); cur != nil && cur.kind == stepExternal && cur.dest == dest {
		return out
	}
	return t.push(c, &step{kind: stepExternal, dest: dest, start: at}, "", out)
}

// push makes s the call's current step and announces it.
func (t *Tracker) push(c *call, s *step, ev EventType, out []Event) []Event {
	if c.dir == "" {
		return out
	}
	out = t.announce(c, c.start, out)
	if cur := c.current(); cur != nil {
		cur.hangup = s.start
		cur.redirect = redirectTo(s.kind)
		cur.target = s.dest
	}
	c.steps = append(c.steps, s)
	if ev != "" {
		e := t.event(c, ev, s.start)
		e.Destination = s.dest
		out = append(out, e)
	}
	return out
}

// queueHid opens the group step of the queue the PBX says ch, the caller
// of c, entered (Channel.Queue) and a gap hid, unless c reached it: when
// the PBX says it joined, after the step c was seen at.
func (t *Tracker) queueHid(c *call, ch Channel, out []Event) []Event {
	if ch.Queue == "" || c.reached(stepGroup, t.named(ch.Queue)) {
		return out
	}
	at := later(ch.Queued, c.start)
	if cur := c.current(); cur != nil {
		at = later(at, cur.start)
	}
	return t.group(c, ch.Queue, "", at, out)
}

// recordTo notes that c is recorded, to file when it is the first file
// named ("" when the PBX names none).
func (c *call) recordTo(file string) {
	c.recorded = true
	if c.recordFile == "" {
		c.recordFile = file
	}
}

// runs notes what the application ch runs says of call c: a recording,
// a fax begun at; and a recording the PBX says it keeps of ch.
func (t *Tracker) runs(c *call, ch Channel, at time.Time, out []Event) []Event {
	if isRecordApp(ch.App) {
		c.recordTo(recordFileOf(ch.App, ch.AppData))
	}
	if ch.Recording != "" {
		// Begun in a gap: the PBX still records the leg.
		c.recordTo(ch.Recording)
	}
	if isFaxApp(ch.App) {
		out = t.faxStart(c, at, out)
	}
	return out
}

// faxBegun is when a fax that a list found l receiving began, as near
// as kanca can tell: the leg's answer, which a fax application follows
// in any dialplan (the books time a fax the same way), else the list.
func faxBegun(l *leg, in Input) time.Time {
	if !l.up.IsZero() && l.up.Before(in.Time) {
		return l.up
	}
	return in.Time
}

func (t *Tracker) faxStart(c *call, at time.Time, out []Event) []Event {
	c.fax = true
	if c.faxSent || c.dir != Inbound {
		return out
	}
	out = t.announce(c, c.start, out)
	c.faxSent = true
	return append(out, t.event(c, FaxInit, at))
}

// announce sends call_init once, before anything else of the call.
func (t *Tracker) announce(c *call, at time.Time, out []Event) []Event {
	if c.announced || c.dir == "" {
		return out
	}
	if c.number == "" {
		// The public number never showed: the call still gets its events,
		// under the number it dialled.
		c.number = t.num.normalize(c.origin.exten)
		c.callee = c.number
	}
	c.announced = true
	return append(out, t.event(c, CallInit, at))
}

func (t *Tracker) event(c *call, typ EventType, at time.Time) Event {
	c.seq++
	return Event{
		Type: typ, CallID: c.uuid, Seq: c.seq, Number: c.number,
		Caller: c.caller, Callee: c.callee, Direction: c.dir, Time: at, Autodial: c.autodial,
	}
}

// finish ends the call at end and returns its call_hangup (and
// missing_call).
func (t *Tracker) finish(c *call, end time.Time, reconciled, expired bool, out []Event) []Event {
	delete(t.calls, c.key)
	t.finished = append(t.finished, c.channels...)
	for _, b := range c.bridges {
		delete(t.bridges, b)
	}
	if expired {
		for _, l := range t.legs {
			if l.c == c {
				t.forget(l)
			}
		}
	}
	if c.dir == "" {
		return out
	}
	out = t.announce(c, c.start, out)

	disposition := c.hangupDisposition()
	rec := &Record{
		UUID: c.uuid, CallType: "voice", Direction: c.dir, Caller: c.caller, Callee: c.callee,
		CallTime: c.start, AnswerTime: c.answer, HangupTime: end, Recorded: c.recorded,
		HangupCause: c.hangupCause(disposition), Disposition: disposition,
		Callflow: t.callflow(c, end), Reconciled: reconciled, Expired: expired,
		Recovered: c.recovered,
	}
	if c.fax {
		rec.CallType = "fax"
	}
	if c.answerListed && !c.answer.IsZero() {
		rec.Estimated = append(rec.Estimated, "answer_time")
	}
	if reconciled || expired {
		// Nobody saw the end: its time is when kanca last heard the PBX
		// (or the maximum duration), and how it ended is inferred.
		rec.Estimated = append(rec.Estimated, estimatedEnd...)
	}
	estimated := c.estimated
	if (c.recovered || c.origin.crossed) && c.endLive && !c.hungUp && c.autodial == nil && c.disposition == "" {
		// A call whose caller's leg lived through a gap (or that the
		// books told through one) and then ended live with no hangup
		// request: the request was in the gap (the books, if read, had
		// not written it down: Asterisk writes its HANGUP row as the
		// channel goes), so who hung up is inferred, and the cause with
		// it, where the PBX does not state them.
		estimated = append(estimated, "sip_hangup_disposition", "hangup_cause")
	}
	for _, f := range estimated {
		if f == "call_record" && c.recorded {
			continue // a recording kanca saw is a fact
		}
		if !slices.Contains(rec.Estimated, f) {
			rec.Estimated = append(rec.Estimated, f)
		}
	}
	if c.recorded {
		rec.RecordFile = c.recordFile
	}
	e := t.event(c, CallHangup, end)
	e.HangupCause = rec.HangupCause
	e.CDR = rec
	e.HangupDetail = disposition
	e.Digit = c.digit
	if !c.answer.IsZero() && end.After(c.answer) {
		e.TalkDuration = int(end.Sub(c.answer) / time.Second)
	}
	if c.connected {
		e.ResultDisposition = "SUCCESS"
	}
	out = append(out, e)
	if c.dir == Inbound && !c.connected && !c.fax {
		m := e
		c.seq++
		m.Seq = c.seq
		m.Type = MissingCall
		out = append(out, m)
	}
	return out
}

// hangupDisposition says how the call ended, seen on the caller's leg: the
// caller's own hangup request is not soft; one the PBX makes is.
func (c *call) hangupDisposition() string {
	if c.disposition != "" {
		return c.disposition
	}
	if c.autodial != nil {
		return c.placedDisposition()
	}
	switch {
	case c.callerHungUp && c.callerUp:
		return "recv_bye"
	case c.callerHungUp:
		return "recv_cancel"
	case c.callerUp || (!c.origin.up.IsZero() && !c.hungUp):
		return "send_bye"
	default:
		return "send_refuse"
	}
}

func (c *call) hangupCause(disposition string) string {
	if c.autodial != nil && c.origin.up.IsZero() && c.endCause != 0 {
		// The called person's side refused or never answered a call
		// kanca placed: the PBX's cause says which (busy, no answer).
		return CauseName(c.endCause)
	}
	if disposition == "recv_cancel" {
		return "ORIGINATOR_CANCEL"
	}
	if c.origin.up.IsZero() {
		switch c.dialStatus {
		case "NOANSWER":
			return "NO_ANSWER"
		case "BUSY":
			return "USER_BUSY"
		case "CONGESTION":
			return "NORMAL_CIRCUIT_CONGESTION"
		}
	}
	switch {
	case isCauseName(c.endCauseName):
		return c.endCauseName
	case c.endCause != 0:
		return CauseName(c.endCause)
	case c.reqCause != 0:
		return CauseName(c.reqCause)
	}
	return "NORMAL_CLEARING"
}

// callflow lists the call's steps as Bulutfon does: the public number
// redirecting to the first destination, then each destination.
func (t *Tracker) callflow(c *call, end time.Time) []Step {
	flow := make([]Step, 0, len(c.steps)+1)
	if c.dir == Inbound {
		first := Step{Callee: c.callee, Start: c.start, Redirection: RedirectionOther}
		if len(c.steps) > 0 {
			first.Redirection = redirectTo(c.steps[0].kind)
			first.Target = c.steps[0].dest
		} else {
			first.Answer, first.Hangup = c.answer, end
		}
		flow = append(flow, first)
	}
	for _, s := range c.steps {
		st := Step{Callee: s.dest, Start: s.start, Answer: s.answer, Hangup: s.hangup, Redirection: s.redirect, Target: s.target}
		if s.redirect == "" {
			st.Hangup = end
			st.Redirection = connectingTo(s.kind)
		}
		flow = append(flow, st)
	}
	return flow
}

func redirectTo(k stepKind) string {
	switch k {
	case stepMenu:
		return RedirectedToMenu
	case stepExtension:
		return RedirectedToExtension
	case stepGroup:
		return RedirectedToGroup
	case stepExternal:
		return RedirectedToExternal
	}
	return RedirectionOther
}

func connectingTo(k stepKind) string {
	switch k {
	case stepMenu:
		return ConnectingToMenu
	case stepExtension:
		return ConnectingToExtension
	case stepGroup:
		return ConnectingToGroup
	case stepExternal:
		return ConnectingToExternal
	}
	return RedirectionOther
}

// isCauseName accepts a cause as FreeSWITCH names it (USER_BUSY), not a
// human text such as Asterisk's "User busy".
func isCauseName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_') {
			return false
		}
	}
	return true
}

// later is the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
