package cdr

import (
	"strings"
	"time"
)

// How a call moves after its first destination: transfers, forwards,
// pickup, parking and voicemail. Each keeps the one call (one uuid, one
// call_init, one call_hangup) and adds callflow steps.

// byPBX says whether the PBX itself answers the step (a menu, voicemail, a
// parking space), so the caller's own answer is the step's.
func (s *step) byPBX() bool {
	return s.kind == stepMenu || s.kind == stepVoicemail || s.kind == stepPark
}

// destination says what kind of step a number is and how the callflow
// names it.
func (t *Tracker) destination(number string) (stepKind, string) {
	if t.num.isOutside(number) {
		return stepExternal, t.num.normalize(number)
	}
	return stepExtension, t.named(number)
}

// number is who the leg reaches: what was dialled for it, else the
// number it presents (an extension's own leg).
func (l *leg) number() string {
	if n := l.dialled(); n != "" {
		return n
	}
	return l.caller
}

// dialled is what the PBX says was dialled to reach the leg: the dial
// string, or the extension a Local channel runs; "" when it does not say.
func (l *leg) dialled() string {
	if l.dialnum != "" {
		return l.dialnum
	}
	if l.local {
		if tg, ok := parseTarget(l.name); ok {
			return tg.number
		}
	}
	return ""
}

// adoptable says whether l is the first leg of a call nobody was told of
// (an extension dialling a feature code, or a consultation between two
// extensions), which another call may take over.
func (l *leg) adoptable() bool {
	return l.c != nil && l == l.c.origin && l.c.dir == "" && !l.c.announced
}

// absorb moves every leg of the silent call s into c and forgets s
// without a word: s was a means of reaching c's caller.
func (t *Tracker) absorb(c, s *call) {
	delete(t.calls, s.key)
	for _, id := range s.channels {
		if m := t.legs[id]; m != nil && m.c == s {
			m.c = c
			c.legs++
		}
	}
	// Legs of s already gone are finished with c, so a journal drops them.
	c.channels = append(c.channels, s.channels...)
	for _, b := range s.bridges {
		t.bridges[b] = c
		c.bridges = append(c.bridges, b)
	}
}

// adopt takes l, the first leg of a silent call, into c: l picked c up,
// took it from a parking space, or was joined to it.
func (t *Tracker) adopt(c *call, l *leg, at time.Time, out []Event) []Event {
	t.absorb(c, l.c)
	if l.dialnum == "" {
		// Not what a Dial naming l as the peer says (whom c rang), nor
		// its caller id now (a PBX may give it the caller's).
		l.dialnum = l.own
	}
	if cur := c.current(); cur != nil && cur.kind == stepPark && l.retrieves != "" {
		c.rename(len(c.steps)-1, l.retrieves)
	}
	return t.connect(c, l, at, out)
}

// connect notes that c's caller now talks to (or is offered to) leg l,
// which no step of c stands for yet: l gets a step of its own.
func (t *Tracker) connect(c *call, l *leg, at time.Time, out []Event) []Event {
	number := l.number()
	if number == "" || c.dir == "" {
		return out
	}
	kind, dest := t.destination(number)
	s := c.current()
	if s == nil || s.kind != kind || s.dest != dest {
		s = &step{kind: kind, dest: dest, start: at}
		ev := CallInitExtension
		if kind != stepExtension || c.reached(kind, dest) {
			ev = ""
		}
		out = t.push(c, s, ev, out)
	}
	l.dialed, l.consult, l.step = true, false, s
	if !l.up.IsZero() {
		if s.answer.IsZero() {
			s.answer = at
		}
		c.connected = true
	}
	return out
}

// bridged handles leg l of call c entering a bridge that owner's call
// holds, or, where the PBX says it (FreeSWITCH), bridged to peer.
func (t *Tracker) bridged(c *call, l *leg, owner *call, peer *leg, at time.Time, out []Event) []Event {
	switch {
	case owner != c && owner.dir != "" && l.adoptable():
		// Asterisk: a retriever joins the bridge of the call it took.
		return t.adopt(owner, l, at, out)
	case peer == nil || peer.c == nil:
		return out
	case peer.c != c && peer.c.dir != "" && l.adoptable():
		// FreeSWITCH: the picker's or retriever's leg bridged to the caller.
		return t.adopt(peer.c, l, at, out)
	case peer.c != c && c.dir != "" && peer.adoptable():
		return t.adopt(c, peer, at, out)
	case peer.c != c || c.dir == "":
		return out
	}
	// Both legs are c's: the caller now talks to a leg that no current
	// step stands for (the target of an attended transfer).
	var x *leg
	switch c.origin {
	case l:
		x = peer
	case peer:
		x = l
	}
	if x == nil || x == c.origin || x.step == c.current() {
		return out
	}
	return t.connect(c, x, at, out)
}

// listedConsultation reads a list's bridge after a gap (in, an adopted
// KindBridgeEnter of l with in.Other), before l joins its call as one the
// call dialled: see consultsWith.
func (t *Tracker) listedConsultation(in Input, l *leg) {
	if !in.Adopted || in.Kind != KindBridgeEnter || in.Other == nil || l.c == nil {
		return
	}
	t.consultsWith(l, t.legs[in.Other.ID])
}

// heardConsultation does the same for a leg kanca heard enter a bridge
// before a gap, whose call no dial named (an attended transfer's
// consultation is originated: Asterisk's Dial names no caller), when a
// list joins it to its call: the other legs heard in that bridge are who
// it talks to.
func (t *Tracker) heardConsultation(l *leg) {
	if l.bridge == "" || l.c == nil {
		return
	}
	for _, id := range l.c.channels {
		if p := t.legs[id]; p != nil && p != l && p.bridge == l.bridge && t.consultsWith(l, p) {
			return
		}
	}
}

// consultsWith marks l, a leg of its call bridged with peer, as the
// consultation of an attended transfer a gap hid, and says whether it
// is: peer is the callee that took the current extension step (not the
// caller), and l is someone else. It is nobody's step until a transfer
// joins the caller to it.
func (t *Tracker) consultsWith(l, peer *leg) bool {
	c := l.c
	s := c.current()
	if s == nil || s.kind != stepExtension || peer == nil || peer.c != c ||
		l == c.origin || peer == c.origin || peer.local || peer.step != s {
		return false
	}
	if _, dest := t.destination(peer.number()); dest != s.dest {
		return false // peer is not the step's callee
	}
	if _, dest := t.destination(l.number()); l.number() == "" || dest == s.dest {
		return false
	}
	l.dialed, l.consult, l.step = false, true, nil
	return true
}

// listedBridge completes what a list said after a gap: l talks in a bridge
// with peer (an adopted KindBridgeEnter). The leg of c bridged with its
// caller is who the call talks to now, as the live events would have
// said: a group's member took the group's call (the group hands over to
// their step), and an extension other than the step's (a picker, a
// retriever, an extension the call was forwarded to) took the call from
// it. A leg is named by what was dialled for it, else, an extension's
// own leg, by its own number; a leg named by neither says nothing.
func (t *Tracker) listedBridge(c *call, l, peer *leg, out []Event) []Event {
	if c == nil || peer == nil || peer.c != c || l.c != c || c.dir == "" {
		return out
	}
	var x *leg
	switch c.origin {
	case l:
		x = peer
	case peer:
		x = l
	}
	if x == nil || x.up.IsZero() || x.consult {
		return out
	}
	who := x.dialled()
	if who == "" && t.num.isExtension(x.own) {
		who = x.own
	}
	if who == "" {
		return out
	}
	kind, dest := t.destination(who)
	s := x.step
	if s != nil && s.kind == kind && s.dest == dest {
		return out
	}
	if s != nil && s == c.current() && s.kind == stepGroup {
		if s.answer.IsZero() {
			s.answer = x.up
		}
		x.step = &step{kind: kind, dest: dest, start: x.up, answer: x.up}
		return t.push(c, x.step, "", out)
	}
	if s != nil && s.answer.Equal(x.up) {
		// Adopted as the step's callee, it was taken to have answered
		// for the step; it answered the call it took from it.
		s.answer = time.Time{}
	}
	return t.connect(c, x, x.up, out)
}

// transfer handles the PBX moving c's caller (in.Channel) elsewhere.
func (t *Tracker) transfer(c *call, in Input, out []Event) []Event {
	var target *leg
	if in.Other != nil {
		target = t.legs[in.Other.ID]
	}
	if target == nil {
		// Blind: the transferee runs the dialplan at the target, which
		// may have routed it already.
		if cur := c.current(); in.Target == "" || (cur != nil && !cur.start.Before(in.Time)) {
			return out
		}
		return t.redirect(c, in.Target, in.Time, out)
	}
	switch {
	case target.c == nil:
		t.attach(target, c)
	case target.c != c && target.c.dir == "" && !target.c.announced:
		t.absorb(c, target.c) // the consultation call between two extensions
	case target.c != c:
		return out
	}
	if target.dialnum == "" && !target.local {
		target.dialnum = in.Target
	}
	return t.connect(c, target, in.Time, out)
}

// redirect sends c on to number: an extension or a number outside.
func (t *Tracker) redirect(c *call, number string, at time.Time, out []Event) []Event {
	if number == "" || c.dir == "" {
		return out
	}
	if t.num.isOutside(number) {
		return t.external(c, &Channel{}, number, at, out)
	}
	return t.extension(c, number, at, out)
}

// park puts c's caller in a parking space (or lot, when the PBX names no
// space): a step the PBX answers; whoever retrieves it gets the next.
func (t *Tracker) park(c *call, space string, at time.Time, out []Event) []Event {
	if cur := c.current(); cur != nil && cur.kind == stepPark {
		if space != "" {
			c.rename(len(c.steps)-1, space)
		}
		return out
	}
	if space == "" {
		space = unnamedSpace
	}
	s := &step{kind: stepPark, dest: space, start: at}
	if !c.origin.up.IsZero() {
		s.answer = at
	}
	return t.push(c, s, "", out)
}

// unnamedSpace stands for the space of a lot that chose one itself, until
// the PBX names it.
const unnamedSpace = "parking"

// nameParked names the call's latest park step by the space the PBX says
// its caller waited in, if the step did not know it: whether that step
// is current or the call was retrieved from it while kanca was away.
func (c *call) nameParked(space string) {
	for i := len(c.steps) - 1; i >= 0; i-- {
		s := c.steps[i]
		if s.kind != stepPark {
			continue
		}
		if s.dest == unnamedSpace {
			c.rename(i, space)
		}
		return
	}
}

// rename names step i anew (a parking lot's space, learnt later), and
// the redirection that led to it.
func (c *call) rename(i int, dest string) {
	s := c.steps[i]
	if i > 0 && c.steps[i-1].target == s.dest {
		c.steps[i-1].target = dest
	}
	s.dest = dest
}

// dialNumber reads the number of a dial string or forward target:
// 1001, 1002@from-internal/n, 0532...@trunk, PJSIP/1001,
// trunk/sip:0532...@host (Asterisk's dialstring leaves out the
// technology; a forward target may name it).
func dialNumber(s string) string {
	s = strings.TrimSpace(s)
	first, _, slash := strings.Cut(s, "/")
	switch {
	case !slash || strings.Contains(first, "@"):
		return userPart(first)
	case isTech(first):
		if tg, ok := parseTarget(s); ok {
			return userPart(tg.number) // PJSIP/sip:1001@host
		}
		return ""
	}
	if tg, ok := parseTarget("dial/" + s); ok {
		return userPart(tg.number)
	}
	return ""
}

func isTech(s string) bool {
	return appIs(s, "PJSIP", "SIP", "IAX2", "DAHDI", "Local", "sofia", "user", "loopback")
}

// recordFileOf reads the file a recording application writes, as its
// arguments name it (MixMonitor(file,options), record_session path).
func recordFileOf(app, data string) string {
	data = strings.TrimSpace(data)
	if appIs(app, "record_session") {
		// {var=value}path: per-recording variables come first.
		if strings.HasPrefix(data, "{") {
			if i := strings.IndexByte(data, '}'); i >= 0 {
				data = data[i+1:]
			}
		}
		f, _, _ := strings.Cut(data, " ")
		return f
	}
	f, _, _ := strings.Cut(data, ",")
	return strings.TrimSpace(f)
}

// retrievedSpace is the parking space an application takes a call from:
// Asterisk ParkedCall(lot,space), FreeSWITCH valet_park LOT SPACE.
func retrievedSpace(app, data string) string {
	switch {
	case appIs(app, "ParkedCall"):
		_, sp, _ := strings.Cut(data, ",")
		return strings.TrimSpace(sp)
	case appIs(app, "valet_park"):
		if f := strings.Fields(data); len(f) == 2 && f[1] != "auto" {
			return f[1]
		}
	case appIs(app, "fifo"):
		if space, entered := fifoNode(data); !entered {
			return space
		}
	}
	return ""
}

// fifoNode reads FreeSWITCH's "fifo NAME[!IMPORTANCE][@DOMAIN] in|out
// ...": the space a caller waits in (in) or a consumer takes a call from
// (out), "" when that is not one node (a consumer serving a list of them).
func fifoNode(data string) (space string, entered bool) {
	f := strings.Fields(data)
	if len(f) < 2 {
		return "", false
	}
	entered = strings.EqualFold(f[1], "in")
	if !entered && !strings.EqualFold(f[1], "out") || strings.Contains(f[0], ",") {
		return "", entered
	}
	name, _, _ := strings.Cut(f[0], "@")
	if i := strings.LastIndexByte(name, '!'); i >= 0 {
		name = name[:i]
	}
	return name, entered
}
