package books

import (
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

// jsonDir reads the files FreeSWITCH's mod_json_cdr writes, one per leg
// (log-dir: a_<uuid>.cdr.json for the A leg, <uuid>.cdr.json for others).
type jsonDir struct{ dir string }

func (d *jsonDir) Close() error { return nil }

// Calls reads the legs of files written since from (a leg's file is
// written when it ends) and tells the calls with a leg in the window.
func (d *jsonDir) Calls(ctx context.Context, from, to time.Time) ([]Call, error) {
	names, err := filepath.Glob(filepath.Join(d.dir, "*.cdr.json"))
	if err != nil {
		return nil, err
	}
	var legs []fsLeg
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
		l, err := parseLeg(b)
		if err != nil {
			return nil, fmt.Errorf("books: %s: %w", name, err)
		}
		if l.end.After(to) {
			continue // a leg still up at to: its file is written when it ends
		}
		legs = append(legs, l)
	}
	var out []Call
	for _, c := range freeswitchCalls(legs) {
		if touches(c, from, to) {
			out = append(out, c)
		}
	}
	return out, nil
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
	apps                         []fsApp
	cause                        int
	causeName, disposition       string
}

type fsApp struct {
	name, data string
	at         time.Time
}

type fsRecord struct {
	SwitchName string `json:"switchname"`
	AppLog     struct {
		Applications []struct {
			Name  string `json:"app_name"`
			Data  string `json:"app_data"`
			Stamp string `json:"app_stamp"`
		} `json:"applications"`
	} `json:"app_log"`
	Callflow  json.RawMessage   `json:"callflow"`
	Variables map[string]string `json:"variables"`
}

type fsCallflow struct {
	ProfileIndex  string `json:"profile_index"`
	CallerProfile struct {
		CallerIDName   string `json:"caller_id_name"`
		CallerIDNumber string `json:"caller_id_number"`
		Destination    string `json:"destination_number"`
		Context        string `json:"context"`
		ChanName       string `json:"chan_name"`
		UUID           string `json:"uuid"`
	} `json:"caller_profile"`
}

func parseLeg(b []byte) (fsLeg, error) {
	var r fsRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return fsLeg{}, err
	}
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
	l.cause, _ = strconv.Atoi(v["hangup_cause_q850"])
	// The first profile is the leg as it was created; a transfer adds others.
	var flows []fsCallflow
	if len(r.Callflow) > 0 && r.Callflow[0] == '[' {
		if err := json.Unmarshal(r.Callflow, &flows); err != nil {
			return fsLeg{}, fmt.Errorf("callflow: %w", err)
		}
	} else if len(r.Callflow) > 0 {
		var f fsCallflow
		if err := json.Unmarshal(r.Callflow, &f); err != nil {
			return fsLeg{}, fmt.Errorf("callflow: %w", err)
		}
		flows = append(flows, f)
	}
	slices.SortFunc(flows, func(a, b fsCallflow) int {
		x, _ := strconv.Atoi(a.ProfileIndex)
		y, _ := strconv.Atoi(b.ProfileIndex)
		return cmp.Compare(x, y)
	})
	if len(flows) > 0 {
		p := flows[0].CallerProfile
		l.caller, l.callerName, l.dest, l.context, l.name = p.CallerIDNumber, p.CallerIDName, p.Destination, p.Context, p.ChanName
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

// bornOf is when the event socket told leg l's creation: its start, or
// the start of the application of its originator o that made it, when
// that is later (a B leg's start_uepoch is its A leg's own, stamped
// before the dialplan ran to the bridge).
func bornOf(l, o *fsLeg) time.Time {
	next := cmp.Or(l.progress, l.answer, l.end)
	born := l.start
	for _, a := range o.apps {
		if !a.at.After(next) && a.at.After(born) {
			born = a.at
		}
	}
	return born
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
	add := func(in cdr.Input) {
		in.Books = true
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
				add(cdr.Input{Kind: cdr.KindDial, Time: l.progress, Channel: ch, Other: other, DialString: l.dest, DialStatus: "RINGING"})
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
		if !l.bridge.IsZero() && l.bridgeTo != "" && !b {
			add(cdr.Input{Kind: cdr.KindBridgeEnter, Time: l.bridge, Channel: ch, Bridge: l.uuid, Other: &cdr.Channel{ID: l.bridgeTo}})
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
