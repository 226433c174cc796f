package books

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/esl"
)

// fsDir reads the files FreeSWITCH's mod_json_cdr and mod_xml_cdr write,
// one per leg (log-dir: a_<uuid>.cdr.json or a_<uuid>.cdr.xml for the A
// leg, <uuid>.cdr.json or <uuid>.cdr.xml for others), each read into the
// same record.
type fsDir struct{ dir string }

func (d *fsDir) Close() error { return nil }

// Calls reads the legs of files written since from (a leg's file is
// written when it ends) and tells the calls with a leg in the window.
func (d *fsDir) Calls(ctx context.Context, from, to time.Time) ([]Call, error) {
	var names []string
	for _, ext := range []string{".cdr.json", ".cdr.xml"} {
		m, err := filepath.Glob(filepath.Join(d.dir, "*"+ext))
		if err != nil {
			return nil, err
		}
		names = append(names, m...)
	}
	var legs []fsLeg
	var later []string // legs that ended after to
	// A B leg's file has no a_ prefix: with none among them, the
	// directory keeps A legs only (or prefix-a-leg is off, and the
	// legs that originated no other tell nothing more).
	aOnly := !slices.ContainsFunc(names, func(n string) bool { return !strings.HasPrefix(filepath.Base(n), "a_") })
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fi, err := os.Stat(name); err != nil || fi.ModTime().Before(from.Add(-time.Hour)) {
			continue // written long before the gap: a call of its own, long over
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("books: %w", err)
		}
		parse := parseLeg
		if strings.HasSuffix(name, ".xml") {
			parse = parseXMLLeg
		}
		l, err := parse(b)
		if err != nil {
			return nil, fmt.Errorf("books: %s: %w", name, err)
		}
		if l.end.After(to) {
			later = append(later, l.uuid)
			continue // a leg still up at to: its file is written when it ends
		}
		legs = append(legs, l)
	}
	return fsCalls(legs, later, from, to, aOnly), nil
}

// fsCalls tells the calls of legs with anything in [from, to]. aOnly:
// the books keep A legs only (mod_xml_cdr's log-b-leg false, FusionPBX's
// default; mod_json_cdr's log-b-leg too), and the legs each originated
// are told from its record (bLegs), but those the books hold as ending
// after to (later).
func fsCalls(legs []fsLeg, later []string, from, to time.Time, aOnly bool) []Call {
	if aOnly {
		legs = bLegs(legs, later)
	}
	var out []Call
	for _, c := range freeswitchCalls(legs) {
		if touches(c, from, to) {
			out = append(out, c)
		}
	}
	return out
}

// fsLeg is what kanca reads of one mod_json_cdr record.
type fsLeg struct {
	uuid, name, switchName       string
	caller, callerName           string
	context, dest, sipReqUser    string
	originator                   string // the leg that originated this one; "" for an A leg
	start, progress, answer, end time.Time
	bridge                       time.Time
	bridgeTo                     string
	bridges                      []fsBridge // per caller profile, when each says
	apps                         []fsApp
	cause                        int
	causeName, disposition       string

	// What an A leg's record says of the legs it originated, for books
	// that keep A legs only (bLegs).
	originated  []fsOriginated
	originatees map[string]fsProfile // by uuid
	bridgeCause string               // bridge_hangup_cause
	estimated   []string             // a leg told from another's record: Input.Estimated
}

// fsBridge is a bridge a caller profile of the leg records: when, and to
// the leg it originated for it (its originatee), "" when it names none.
type fsBridge struct {
	at time.Time
	to string
	// until is when the profile was transferred away from the bridge
	// (its transfer_time), zero when it was not.
	until time.Time
}

type fsApp struct {
	name, data string
	at         time.Time
}

// fsRecord is what kanca reads of a leg's CDR, as mod_json_cdr writes it
// (json tags) and as mod_xml_cdr does (xml tags): the same variables,
// application log and caller profiles, laid out by
// switch_ivr_generate_json_cdr and switch_ivr_generate_xml_cdr.
type fsRecord struct {
	SwitchName string `json:"switchname" xml:"switchname,attr"`
	AppLog     struct {
		Applications []struct {
			Name  string `json:"app_name" xml:"app_name,attr"`
			Data  string `json:"app_data" xml:"app_data,attr"`
			Stamp string `json:"app_stamp" xml:"app_stamp,attr"`
		} `json:"applications" xml:"application"`
	} `json:"app_log" xml:"app_log"`
	Callflow  fsCallflows `json:"callflow" xml:"callflow"`
	Variables fsVariables `json:"variables" xml:"variables"`
}

type fsCallflow struct {
	ProfileIndex  string `json:"profile_index" xml:"profile_index,attr"`
	CallerProfile struct {
		CallerIDName   string `json:"caller_id_name" xml:"caller_id_name"`
		CallerIDNumber string `json:"caller_id_number" xml:"caller_id_number"`
		ANI            string `json:"ani" xml:"ani"`
		Destination    string `json:"destination_number" xml:"destination_number"`
		Context        string `json:"context" xml:"context"`
		ChanName       string `json:"chan_name" xml:"chan_name"`
		UUID           string `json:"uuid" xml:"uuid"`
		Originatee     struct {
			Profiles []fsProfile `json:"originatee_caller_profiles" xml:"originatee_caller_profile"`
		} `json:"originatee" xml:"originatee"`
	} `json:"caller_profile" xml:"caller_profile"`
	Times struct {
		Bridged  string `json:"bridged_time" xml:"bridged_time"`
		Transfer string `json:"transfer_time" xml:"transfer_time"`
	} `json:"times" xml:"times"`
}

// fsProfile is a caller profile a leg's record holds of another leg.
type fsProfile struct {
	UUID           string `json:"uuid" xml:"uuid"`
	CallerIDNumber string `json:"caller_id_number" xml:"caller_id_number"`
	CallerIDName   string `json:"caller_id_name" xml:"caller_id_name"`
	Destination    string `json:"destination_number" xml:"destination_number"`
	Context        string `json:"context" xml:"context"`
	ChanName       string `json:"chan_name" xml:"chan_name"`
}

// fsCallflows are a leg's caller profiles: a JSON array (a single
// object in older mod_json_cdr), repeated <callflow> elements in XML.
type fsCallflows []fsCallflow

func (f *fsCallflows) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var one fsCallflow
		if err := json.Unmarshal(b, &one); err != nil {
			return fmt.Errorf("callflow: %w", err)
		}
		*f = fsCallflows{one}
		return nil
	}
	var many []fsCallflow
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("callflow: %w", err)
	}
	*f = many
	return nil
}

// fsVariables are a leg's channel variables.
type fsVariables map[string]string

func parseLeg(b []byte) (fsLeg, error) {
	var r fsRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return fsLeg{}, err
	}
	if urlEncoded(r.Variables) {
		// mod_json_cdr's encode-values (on by default) URL-encodes each
		// variable's value, as mod_xml_cdr always does.
		for k, v := range r.Variables {
			r.Variables[k] = urlDecode(v)
		}
	}
	return r.leg()
}

// urlEncoded reports whether the variables' values are URL-encoded: none
// holds a character switch_url_encode encodes (SWITCH_URL_UNSAFE), which
// the plain values of any leg do (its channel name, SIP URIs, its SDP).
func urlEncoded(v fsVariables) bool {
	for _, s := range v {
		if strings.ContainsAny(s, "\r\n #&+:;<=>?@[\\]^`{|}\"") {
			return false
		}
	}
	return len(v) > 0
}

// leg is what the record says of its leg.
func (r *fsRecord) leg() (fsLeg, error) {
	v := r.Variables
	l := fsLeg{
		uuid: v["uuid"], switchName: r.SwitchName, originator: v["originator"],
		start: uepoch(v["start_uepoch"]), progress: uepoch(v["progress_uepoch"]),
		answer: uepoch(v["answer_uepoch"]), bridge: uepoch(v["bridge_uepoch"]), end: uepoch(v["end_uepoch"]),
		bridgeTo: v["bridge_uuid"], causeName: v["hangup_cause"], disposition: v["sip_hangup_disposition"],
		sipReqUser: v["sip_req_user"],
	}
	if l.originator == "" {
		l.originator = v["originating_leg_uuid"]
	}
	if m := v["cc_member_session_uuid"]; l.originator == "" && m != l.uuid {
		// mod_callcenter originates an agent's leg for the member's, as
		// the event socket decode reads it.
		l.originator = m
	}
	l.cause, _ = strconv.Atoi(v["hangup_cause_q850"])
	// The first profile is the leg as it was created; a transfer adds others.
	flows := slices.Clone(r.Callflow)
	slices.SortFunc(flows, func(a, b fsCallflow) int {
		x, _ := strconv.Atoi(a.ProfileIndex)
		y, _ := strconv.Atoi(b.ProfileIndex)
		return cmp.Compare(x, y)
	})
	l.originated, l.bridgeCause = originatedLegs(v), v["bridge_hangup_cause"]
	// Each caller profile (the leg as created, then after each transfer)
	// keeps the time it was bridged and the leg it originated to bridge.
	for _, f := range flows {
		for _, o := range f.CallerProfile.Originatee.Profiles {
			if l.originatees == nil {
				l.originatees = map[string]fsProfile{}
			}
			l.originatees[o.UUID] = o
		}
		if at := uepoch(f.Times.Bridged); !at.IsZero() {
			b := fsBridge{at: at, until: uepoch(f.Times.Transfer)}
			if o := f.CallerProfile.Originatee.Profiles; len(o) > 0 {
				b.to = o[0].UUID
			}
			l.bridges = append(l.bridges, b)
		}
	}
	if len(flows) > 0 {
		p := flows[0].CallerProfile
		l.caller, l.callerName, l.dest, l.context, l.name = p.CallerIDNumber, p.CallerIDName, p.Destination, p.Context, p.ChanName
		if v["direction"] == "inbound" && p.ANI != "" {
			// A profile is rewritten in place after the leg's creation (a
			// display update from the far end of a bridge, a pickup, an
			// attended transfer): an inbound leg is created with its ani
			// and caller id from the same number (mod_sofia: the From
			// user, or the RPID or P-Asserted-Identity one), and nothing
			// rewrites the ani.
			l.caller = p.ANI
		} else if (l.caller == "" || l.caller == "Unknown") && v["sip_from_user"] != "" {
			// A profile rewritten since (a uuid_bridge to a parked call
			// leaves FreeSWITCH's placeholder): the event socket told the
			// leg's creation with the number its SIP From carried.
			l.caller = v["sip_from_user"]
		}
		if l.uuid == "" {
			l.uuid = p.UUID
		}
	}
	// The leg's first profile is its caller id as the event socket told
	// its creation; effective_caller_id_number is what an outbound route
	// presents on the legs it dials, which their own profiles carry.
	for _, a := range r.AppLog.Applications {
		l.apps = append(l.apps, fsApp{name: a.Name, data: a.Data, at: uepoch(a.Stamp)})
	}
	if l.uuid == "" || l.start.IsZero() || l.end.IsZero() {
		return fsLeg{}, fmt.Errorf("no uuid, start_uepoch or end_uepoch")
	}
	return l, nil
}

// bornOf is when the event socket told leg l's creation, as its
// originator o's application that dials it shows: the application's
// stamp when it is that of one that dials (bridge, att_xfer, ...) and
// falls within a second after l's start_uepoch, else the start. A B
// leg's start_uepoch comes before the application log stamps the bridge
// that made it, and the applications before the bridge (an outbound
// route setting the number to present) before that: told at the start,
// the leg would be born before them.
func bornOf(l, o *fsLeg) time.Time {
	for _, a := range o.apps {
		if dialsOut(a.name) && !a.at.Before(l.start) && a.at.Sub(l.start) < time.Second {
			return a.at
		}
	}
	return l.start
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// dialsOut reports whether a FreeSWITCH application creates legs.
func dialsOut(app string) bool {
	switch strings.ToLower(app) {
	case "bridge", "att_xfer", "originate", "enterprise_originate", "fifo", "intercept", "valet_park":
		return true
	}
	return false
}

func uepoch(s string) time.Time {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMicro(n).UTC()
}

// freeswitchCalls groups legs under the A leg that originated them (the
// chain of originators) and tells each call as the event socket would
// have: legs created, the A leg's applications, originates and their
// progress, answers, the bridge, who hung up, and each leg's end.
func freeswitchCalls(legs []fsLeg) []Call {
	byID := map[string]*fsLeg{}
	for i := range legs {
		byID[legs[i].uuid] = &legs[i]
	}
	root := func(l *fsLeg) *fsLeg {
		for seen := 0; l.originator != "" && seen < 16; seen++ {
			o := byID[l.originator]
			if o == nil {
				break
			}
			l = o
		}
		return l
	}
	groups := map[string][]*fsLeg{}
	var order []string
	for i := range legs {
		r := root(&legs[i])
		if _, ok := groups[r.uuid]; !ok {
			order = append(order, r.uuid)
		}
		groups[r.uuid] = append(groups[r.uuid], &legs[i])
	}
	calls := make([]Call, 0, len(order))
	for _, id := range order {
		calls = append(calls, tellFreeSWITCH(id, groups[id]))
	}
	sortCalls(calls)
	return calls
}

func tellFreeSWITCH(id string, legs []*fsLeg) Call {
	c := Call{ID: id}
	// The A leg first: a B leg's start_uepoch may equal its A leg's.
	slices.SortStableFunc(legs, func(a, b *fsLeg) int {
		return cmp.Or(cmp.Compare(len(min(a.originator, "x")), len(min(b.originator, "x"))), a.start.Compare(b.start))
	})
	// No leg without an originator: the A leg has no record yet.
	c.Open = len(legs) > 0 && legs[0].originator != ""
	if c.Open {
		c.ID = legs[0].originator
	}
	var ins, ends []cdr.Input
	snap := map[string]cdr.Channel{}
	for _, l := range legs {
		c.Legs = append(c.Legs, l.uuid)
		ch := cdr.Channel{ID: l.uuid, Name: l.name, LinkedID: l.uuid, State: "Ring", CallerNumber: l.caller,
			CallerName: l.callerName, DialedNumber: l.sipReqUser, Context: l.context, Exten: l.dest, Created: l.start}
		if l.originator != "" {
			ch.LinkedID, ch.State = l.originator, "Down"
		}
		snap[l.uuid] = ch
	}
	var est []string // the leg's estimated fields, when another's record tells it
	add := func(in cdr.Input) {
		in.Books = true
		if len(est) > 0 {
			in.Estimated = est
		}
		if in.Server == "" {
			in.Server = legs[0].switchName
		}
		ins = append(ins, in)
	}
	byID := map[string]*fsLeg{}
	for _, l := range legs {
		byID[l.uuid] = l
	}
	for _, l := range legs {
		est = l.estimated
		ch := snap[l.uuid]
		born := l.start
		if o := byID[l.originator]; o != nil {
			born = bornOf(l, o)
		}
		add(cdr.Input{Kind: cdr.KindCreated, Time: born, Channel: ch})
		b := l.originator != ""
		if b {
			other := &cdr.Channel{ID: l.originator, LinkedID: l.originator}
			add(cdr.Input{Kind: cdr.KindDial, Time: born, Channel: ch, Other: other, DialString: l.dest})
			if !l.progress.IsZero() {
				ch.State = "Ringing"
				add(cdr.Input{Kind: cdr.KindDial, Time: latest(l.progress, born), Channel: ch, Other: other, DialString: l.dest, DialStatus: "RINGING"})
			}
		} else if !l.progress.IsZero() {
			ch.State = "Ringing"
			add(cdr.Input{Kind: cdr.KindState, Time: l.progress, Channel: ch})
		}
		for _, a := range l.apps {
			in := cdr.Input{Kind: cdr.KindDialplan, Time: a.at, Channel: ch}
			in.Channel.App, in.Channel.AppData = a.name, a.data
			if strings.EqualFold(a.name, "ivr") {
				in.Kind = cdr.KindMenu
				in.Detail, _, _ = strings.Cut(strings.TrimSpace(a.data), " ")
			}
			add(in)
			if strings.EqualFold(a.name, "callcenter") {
				// The member enters the queue (callcenter::info
				// member-queue-start on the event socket).
				q := cdr.Input{Kind: cdr.KindQueue, Time: a.at, Channel: ch}
				if q.Detail, _, _ = strings.Cut(strings.TrimSpace(a.data), "@"); q.Detail != "" {
					add(q)
				}
			}
			// The event socket shows the number an outbound route sets
			// to present as the leg's caller id from then on.
			if n, ok := strings.CutPrefix(a.data, "effective_caller_id_number="); ok && strings.EqualFold(a.name, "set") {
				ch.CallerNumber = n
			}
		}
		if !l.answer.IsZero() {
			ch.State = "Up"
			add(cdr.Input{Kind: cdr.KindState, Time: l.answer, Channel: ch})
		}
		if !b {
			// Every bridge its profiles record (a transfer's or a
			// retrieval's after the first), the last one's partner
			// named by bridge_uuid when its profile names none.
			bridges := l.bridges
			if len(bridges) == 0 && !l.bridge.IsZero() {
				bridges = []fsBridge{{at: l.bridge}}
			}
			for _, br := range bridges {
				to := br.to
				if to == "" && br.at.Equal(l.bridge) {
					to = l.bridgeTo
				}
				if to != "" {
					add(cdr.Input{Kind: cdr.KindBridgeEnter, Time: br.at, Channel: ch, Bridge: l.uuid, Other: &cdr.Channel{ID: to}})
				}
			}
		}
		end := cdr.Input{Time: l.end, Channel: ch, Cause: l.cause, CauseName: l.causeName, CauseText: l.causeName}
		if b {
			if l.answer.IsZero() {
				d := end
				d.Kind, d.Other, d.DialString, d.DialStatus = cdr.KindDial, &cdr.Channel{ID: l.originator, LinkedID: l.originator}, l.dest, esl.DialStatus(l.causeName)
				d.Cause, d.CauseName, d.CauseText = 0, "", ""
				add(d)
			}
		} else {
			h := end
			h.Kind, h.Soft = cdr.KindHangupRequest, !strings.HasPrefix(l.disposition, "recv_")
			add(h)
		}
		d := end
		d.Kind, d.Disposition, d.Books = cdr.KindDestroyed, l.disposition, true
		d.Estimated = l.estimated
		if d.Server == "" {
			d.Server = legs[0].switchName
		}
		if b {
			ends = append([]cdr.Input{d}, ends...)
		} else {
			ends = append(ends, d)
		}
	}
	slices.SortStableFunc(ins, func(a, b cdr.Input) int { return a.Time.Compare(b.Time) })
	// Ends last at their time, the callee legs' before the caller's, as
	// the event socket reports them.
	slices.SortStableFunc(ends, func(a, b cdr.Input) int { return a.Time.Compare(b.Time) })
	for _, e := range ends {
		i, _ := slices.BinarySearchFunc(ins, e.Time, func(in cdr.Input, t time.Time) int {
			if in.Time.After(t) {
				return 1
			}
			return -1
		})
		ins = slices.Insert(ins, i, e)
	}
	c.Inputs = ins
	return c
}
