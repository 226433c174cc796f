package books

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanca/kanca/cdr"
)

// celRow is one row of Asterisk's Channel Event Logging, as cel_custom,
// cel_odbc and FreePBX's asteriskcdrdb.cel keep it.
type celRow struct {
	Event                string
	Time                 time.Time
	CIDName, CIDNum      string
	DNID                 string
	Exten, Context, Chan string
	App, AppData         string
	UniqueID, LinkedID   string
	Peer, Extra          string
}

// cdrRow is what kanca reads of an Asterisk CDR row: which dial of the
// caller's leg reached which channel, and how it ended.
type cdrRow struct {
	Channel, DstChannel string
	LastApp, LastData   string
	Disposition         string // ANSWERED, NO ANSWER, BUSY, FAILED, CONGESTION
	LinkedID            string
}

// celExtra is the JSON of a CEL row's extra column.
type celExtra struct {
	HangupCause  int    `json:"hangupcause"`
	HangupSource string `json:"hangupsource"`
	DialStatus   string `json:"dialstatus"`
	BridgeID     string `json:"bridge_id"`
	Digit        string `json:"digit"`
}

// asteriskCalls groups CEL rows by linkedid and tells each call as the
// ARI stream would have: channels created, the caller's dialplan, dials
// with their outcome, answers, bridges, who hung up and why.
//
// Only what the books held at to is read: CEL rows up to it, and the CDR
// rows of calls that ended by then (Asterisk writes a CDR at the end).
func asteriskCalls(cel []celRow, cdrs []cdrRow, to time.Time) []Call {
	byCall := map[string][]celRow{}
	ended := map[string]bool{}
	var order []string
	for _, r := range cel {
		if r.LinkedID == "" || r.UniqueID == "" || r.Time.After(to) {
			continue
		}
		if r.Event == "LINKEDID_END" {
			ended[r.LinkedID] = true
		}
		if _, ok := byCall[r.LinkedID]; !ok {
			order = append(order, r.LinkedID)
		}
		byCall[r.LinkedID] = append(byCall[r.LinkedID], r)
	}
	dials := map[string]cdrRow{} // by dstchannel
	for _, r := range cdrs {
		if r.DstChannel != "" && ended[r.LinkedID] {
			dials[r.DstChannel] = r
		}
	}
	calls := make([]Call, 0, len(order))
	for _, id := range order {
		rows := byCall[id]
		slices.SortStableFunc(rows, func(a, b celRow) int { return a.Time.Compare(b.Time) })
		calls = append(calls, tellAsterisk(id, rows, dials))
	}
	sortCalls(calls)
	return calls
}

type astChan struct {
	snap     cdr.Channel
	dialed   bool // a Dial input made it the caller's callee
	answered bool
	settled  bool // its dial has a final status
	cause    int
}

func tellAsterisk(linked string, rows []celRow, dials map[string]cdrRow) Call {
	c := Call{ID: linked}
	chans := map[string]*astChan{}
	byName := map[string]*astChan{}
	var origin *astChan
	var lastApp, lastData, lastContext string
	emit := func(in cdr.Input) {
		in.Books = true
		c.Inputs = append(c.Inputs, in)
	}
	// dialplan says the caller's leg runs app now, as ARI's ChannelDialplan.
	dialplan := func(at time.Time, context, exten, app, data string) {
		if origin == nil || app == "" || (app == lastApp && data == lastData && context == lastContext) {
			return
		}
		lastApp, lastData, lastContext = app, data, context
		origin.snap.Context, origin.snap.Exten, origin.snap.App, origin.snap.AppData = context, exten, app, data
		emit(cdr.Input{Kind: cdr.KindDialplan, Time: at, Channel: origin.snap})
	}
	// dialOf finds the dial of the caller's leg that reached a channel: its
	// CDR row, else the caller's later CEL rows running a dial.
	dialOf := func(name string, from int) (app, data string) {
		if d, ok := dials[name]; ok && d.LastApp != "" {
			return d.LastApp, d.LastData
		}
		for _, r := range rows[from:] {
			if origin != nil && r.UniqueID == origin.snap.ID && isDialApp(r.App) {
				return r.App, r.AppData
			}
		}
		// Still ringing when the books were read: neither a CDR nor a
		// later row of the caller names the dial yet. The channel the PBX
		// created for the call names what was dialled.
		if tech, _, ok := strings.Cut(name, "-"); ok && !strings.HasPrefix(name, "Local/") && strings.Contains(tech, "/") {
			return "Dial", tech
		}
		return "", ""
	}
	for i, r := range rows {
		ch := chans[r.UniqueID]
		if ch == nil {
			if r.Event != "CHAN_START" {
				// A channel whose start is outside the rows read.
				ch = &astChan{snap: cdr.Channel{ID: r.UniqueID, Created: r.Time, State: "Up"}}
			} else {
				ch = &astChan{snap: cdr.Channel{ID: r.UniqueID, Created: r.Time, State: "Down"}}
			}
			chans[r.UniqueID] = ch
			c.Legs = append(c.Legs, r.UniqueID)
		}
		ch.snap.Name = r.Chan
		byName[r.Chan] = ch
		if r.CIDNum != "" {
			ch.snap.CallerNumber = r.CIDNum
		}
		if r.CIDName != "" {
			ch.snap.CallerName = r.CIDName
		}
		if r.Event != "CHAN_START" && ch == origin {
			dialplan(r.Time, r.Context, r.Exten, r.App, r.AppData)
		}
		var extra celExtra
		if strings.HasPrefix(r.Extra, "{") {
			_ = json.Unmarshal([]byte(r.Extra), &extra) // a row's extra is informative; a bad one costs a detail, not the call
		}
		switch r.Event {
		case "CHAN_START":
			ch.snap.Context, ch.snap.Exten = r.Context, r.Exten
			if r.UniqueID == linked || origin == nil && r.UniqueID == r.LinkedID {
				origin = ch
				ch.snap.State = "Ring"
				emit(cdr.Input{Kind: cdr.KindCreated, Time: r.Time, Channel: ch.snap})
				lastContext = r.Context
				continue
			}
			ch.snap.LinkedID = linked
			emit(cdr.Input{Kind: cdr.KindCreated, Time: r.Time, Channel: ch.snap})
			if origin == nil || strings.HasPrefix(r.Chan, "Local/") {
				continue
			}
			app, data := dialOf(r.Chan, i)
			if !isDialApp(app) {
				continue
			}
			// The number the caller presents is set before its Dial (an
			// outbound route's CALLERID(num)); CEL shows it on the
			// caller's next row.
			for _, n := range rows[i+1:] {
				if n.UniqueID == origin.snap.ID {
					if n.CIDNum != "" {
						origin.snap.CallerNumber = n.CIDNum
					}
					break
				}
			}
			dialplan(r.Time, origin.snap.Context, origin.snap.Exten, app, data)
			ch.dialed = true
			emit(cdr.Input{Kind: cdr.KindDial, Time: r.Time, Channel: ch.snap, Other: ptr(origin.snap), DialString: dialString(data, r.Chan)})
		case "ANSWER":
			ch.snap.State = "Up"
			ch.answered = true
			emit(cdr.Input{Kind: cdr.KindState, Time: r.Time, Channel: ch.snap})
			if ch.dialed && !ch.settled {
				ch.settled = true
				emit(cdr.Input{Kind: cdr.KindDial, Time: r.Time, Channel: ch.snap, Other: ptr(origin.snap), DialStatus: "ANSWER"})
			}
		case "BRIDGE_ENTER", "BRIDGE_EXIT":
			in := cdr.Input{Kind: cdr.KindBridgeEnter, Time: r.Time, Channel: ch.snap, Bridge: extra.BridgeID}
			if r.Event == "BRIDGE_EXIT" {
				in.Kind = cdr.KindBridgeLeave
			} else if p := byName[r.Peer]; p != nil && r.Peer != "" {
				in.Other = ptr(p.snap)
			}
			emit(in)
		case "DTMF":
			if extra.Digit != "" {
				emit(cdr.Input{Kind: cdr.KindDTMF, Time: r.Time, Channel: ch.snap, Digit: extra.Digit})
			}
		case "HANGUP":
			ch.cause = extra.HangupCause
			if ch == origin && extra.DialStatus != "" {
				emit(cdr.Input{Kind: cdr.KindVar, Time: r.Time, Channel: ch.snap, Var: "DIALSTATUS", Value: extra.DialStatus})
			}
			if ch.dialed && !ch.settled {
				ch.settled = true
				emit(cdr.Input{Kind: cdr.KindDial, Time: r.Time, Channel: ch.snap, Other: ptr(origin.snap),
					DialStatus: dialOutcome(dials[r.Chan].Disposition, extra, origin.snap.Name)})
			}
			// The side that hung up asks first; the other leg's request is
			// the PBX tearing it down.
			soft := extra.HangupSource != "" && extra.HangupSource != r.Chan
			emit(cdr.Input{Kind: cdr.KindHangupRequest, Time: r.Time, Channel: ch.snap, Cause: extra.HangupCause, Soft: soft})
		case "CHAN_END":
			emit(cdr.Input{Kind: cdr.KindDestroyed, Time: r.Time, Channel: ch.snap, Cause: ch.cause, CauseName: cdr.CauseName(ch.cause)})
		}
	}
	return c
}

// dialOutcome is the Dial status of a callee that ended unanswered, as ARI
// would have said it.
func dialOutcome(disposition string, extra celExtra, caller string) string {
	switch {
	case extra.HangupSource == caller && caller != "":
		return "CANCEL"
	case extra.HangupCause == 17 || disposition == "BUSY":
		return "BUSY"
	case extra.HangupCause == 26:
		return "CANCEL" // answered elsewhere
	case disposition == "FAILED" || disposition == "CONGESTION":
		return "CHANUNAVAIL"
	}
	return "NOANSWER"
}

func isDialApp(app string) bool {
	switch strings.ToLower(app) {
	case "dial", "queue", "followme":
		return true
	}
	return false
}

// dialString is the part of a Dial's data that reached channel name
// (PJSIP/1000 for PJSIP/1000-00000001), else the data's first target.
func dialString(data, name string) string {
	targets, _, _ := strings.Cut(data, ",")
	tech, _, _ := strings.Cut(name, "-")
	for _, t := range strings.Split(targets, "&") {
		if strings.EqualFold(t, tech) || strings.HasPrefix(t, tech+"/") {
			return t
		}
	}
	first, _, _ := strings.Cut(targets, "&")
	return first
}

func ptr[T any](v T) *T { return &v }

// epoch reads Asterisk's epoch.usec times.
func epoch(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, false
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var us int64
	if frac != "" {
		frac = (frac + "000000")[:6]
		if us, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, false
		}
	}
	return time.Unix(n, us*1000).UTC(), true
}
