package books

import (
	"strings"
	"time"
)

// fsOriginated is a leg an A leg originated, as its record's
// originated_legs and originate_causes name it.
type fsOriginated struct {
	uuid, dest, cause string
}

// originatedLegs reads originated_legs (uuid;callee name;callee number,
// one per leg originated, an array when several) and originate_causes
// (uuid;cause: NONE for the one that answered).
func originatedLegs(v fsVariables) []fsOriginated {
	values := func(s string) []string {
		if a, ok := strings.CutPrefix(s, "ARRAY::"); ok {
			return strings.Split(a, "|:")
		}
		if s == "" {
			return nil
		}
		return []string{s}
	}
	causes := map[string]string{}
	for _, c := range values(v["originate_causes"]) {
		if id, cause, ok := strings.Cut(c, ";"); ok {
			causes[id] = cause
		}
	}
	var out []fsOriginated
	seen := map[string]bool{}
	for _, o := range values(v["originated_legs"]) {
		f := strings.Split(o, ";")
		if len(f) < 3 || f[0] == "" || seen[f[0]] {
			continue
		}
		seen[f[0]] = true
		out = append(out, fsOriginated{uuid: f[0], dest: f[len(f)-1], cause: causes[f[0]]})
	}
	return out
}

// bLegs adds to legs, read from books that keep A legs only (FusionPBX
// sets mod_xml_cdr's log-b-leg false), the legs each A leg originated, as
// its record tells them: the number dialled, the caller id presented (its
// originatee profile), born when the application that dials ran, ringing
// when the A leg heard progress, the one bridged answered when the A leg
// was bridged to it and ended with the A leg, the others ended with the
// cause originate_causes gives, when the A leg moved on. Those times are
// the A leg's, not the B leg's own: the leg's inputs name answer_time
// estimated. A leg the books hold (later: one that ended after the
// window) is not told again.
func bLegs(legs []fsLeg, later []string) []fsLeg {
	have := map[string]bool{}
	for _, id := range later {
		have[id] = true
	}
	for _, l := range legs {
		have[l.uuid] = true
	}
	out := legs
	for i := range legs {
		a := &legs[i]
		for _, o := range a.originated {
			if have[o.uuid] {
				continue
			}
			have[o.uuid] = true
			out = append(out, bLeg(a, o))
		}
	}
	return out
}

func bLeg(a *fsLeg, o fsOriginated) fsLeg {
	p := a.originatees[o.uuid]
	b := fsLeg{
		uuid: o.uuid, name: p.ChanName, switchName: a.switchName, originator: a.uuid,
		caller: p.CallerIDNumber, callerName: p.CallerIDName, context: a.context, dest: o.dest,
		estimated: []string{"answer_time"},
	}
	if p.Destination != "" {
		b.dest = p.Destination
	}
	if p.Context != "" {
		b.context = p.Context
	}
	if b.caller == "" {
		b.caller, b.callerName = a.caller, a.callerName
	}
	// Born when the application that dials it ran: the last one before
	// the A leg's end whose data names its number, else the first.
	var dial *fsApp
	next := a.end
	for i := range a.apps {
		ap := &a.apps[i]
		if !dialsOut(ap.name) {
			continue
		}
		if dial == nil || strings.Contains(ap.data, b.dest) {
			dial = ap
		}
	}
	b.start = a.start
	if dial != nil {
		b.start = dial.at
		for _, ap := range a.apps {
			if ap.at.After(dial.at) {
				next = ap.at
				break
			}
		}
	}
	if !a.progress.IsZero() {
		b.progress = latest(a.progress, b.start)
	}
	bridged := o.cause == "NONE" || o.cause == ""
	var until time.Time // the A leg was transferred away from it then
	if bridged {
		// Answered: the A leg was bridged to it then.
		for _, br := range a.bridges {
			if br.to == o.uuid || br.to == "" {
				b.answer, until = br.at, br.until
				break
			}
		}
		if b.answer.IsZero() {
			b.answer = a.bridge
		}
		if b.answer.IsZero() {
			bridged = false
		}
	}
	if bridged && !until.IsZero() && until.Before(a.end) {
		// The A leg went on without it (a transfer of either side): it
		// ended then, who hung up unknown.
		b.end, b.causeName = until, "NORMAL_CLEARING"
		b.estimated = []string{"answer_time", "hangup_time"}
		return b
	}
	if bridged {
		b.end = a.end
		b.causeName = a.bridgeCause
		if b.causeName == "" {
			b.causeName = "NORMAL_CLEARING"
		}
		// Who hung up, seen from the other side.
		switch a.disposition {
		case "recv_bye":
			b.disposition = "send_bye"
		case "send_bye":
			b.disposition = "recv_bye"
		}
		return b
	}
	b.causeName = o.cause
	switch o.cause {
	case "ORIGINATOR_CANCEL":
		b.end = a.end // the caller gave up: its end cancels the dial
	case "LOSE_RACE", "PICKED_OFF":
		b.end = latest(a.answer, b.start) // another leg answered
		if a.answer.IsZero() {
			b.end = a.end
		}
	default:
		b.end = next // the dial failed and the dialplan went on
	}
	if b.end.Before(b.start) {
		b.end = b.start
	}
	b.disposition = "send_cancel"
	if o.cause == "USER_BUSY" {
		b.disposition = "recv_refuse"
	}
	b.estimated = []string{"hangup_time"}
	return b
}
