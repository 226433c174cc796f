package books

import (
	"cmp"
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

// celExtra is the JSON of a CEL row's extra column: a hangup's cause,
// side and dial status, a bridge, a digit, and the channels a transfer,
// a pickup or a park names.
type celExtra struct {
	HangupCause  int    `json:"hangupcause"`
	HangupSource string `json:"hangupsource"`
	DialStatus   string `json:"dialstatus"`
	BridgeID     string `json:"bridge_id"`
	Digit        string `json:"digit"`

	Extension  string `json:"extension"`                   // BLINDTRANSFER
	Transferee string `json:"transferee_channel_uniqueid"` // BLINDTRANSFER, ATTENDEDTRANSFER
	Bridge1    string `json:"bridge1_id"`                  // ATTENDEDTRANSFER
	Bridge2    string `json:"bridge2_id"`
	Channel2   string `json:"channel2_uniqueid"`
	Target     string `json:"transfer_target_channel_uniqueid"` // "N/A" when the target is a bridge
	Picker     string `json:"pickup_channel_uniqueid"`          // PICKUP
	ParkingLot string `json:"parking_lot"`                      // PARK_START
	Retriever  string `json:"retriever"`                        // PARK_END: a channel name
}

// asteriskCalls groups CEL rows by linkedid and tells each call as the
// ARI stream would have: channels created, the caller's dialplan, dials
// with their outcome, answers, bridges, transfers, pickups and parks, who
// hung up and why.
//
// Only what the books held at to is read: CEL rows up to it, and the CDR
// rows of calls that ended by then (Asterisk writes a CDR at the end).
func asteriskCalls(cel []celRow, cdrs []cdrRow, to time.Time) []Call {
	// A channel that began a call of its own and then joined another (the
	// extension that picked up a ringing call, or retrieved a parked one)
	// changes its linkedid: its call is told with the one it joined.
	first, last := map[string]string{}, map[string]string{}
	for _, r := range cel {
		if r.LinkedID == "" || r.UniqueID == "" || r.Time.After(to) {
			continue
		}
		if _, ok := first[r.UniqueID]; !ok {
			first[r.UniqueID] = r.LinkedID
		}
		last[r.UniqueID] = r.LinkedID
	}
	joined := map[string]string{}
	for id, l := range first {
		if l == id && last[id] != l {
			joined[l] = last[id]
		}
	}
	// A pickup and a parked call's retrieval name who joined before the
	// joiner's rows show it.
	byName := map[string]string{}
	for _, r := range cel {
		if r.Time.After(to) {
			continue
		}
		byName[r.Chan] = r.UniqueID
		var extra celExtra
		switch r.Event {
		case "PICKUP", "PARK_END":
			_ = json.Unmarshal([]byte(r.Extra), &extra) // informative, as in tellAsterisk
		default:
			continue
		}
		joiner := cmp.Or(extra.Picker, byName[extra.Retriever])
		if joiner != "" && first[joiner] == joiner && joiner != r.LinkedID {
			joined[joiner] = r.LinkedID
		}
	}
	callOf := func(linked string) string {
		for seen := 0; seen < 8; seen++ {
			next, ok := joined[linked]
			if !ok {
				break
			}
			linked = next
		}
		return linked
	}
	byCall := map[string][]celRow{}
	ended := map[string]bool{}
	var order []string
	for _, r := range cel {
		if r.LinkedID == "" || r.UniqueID == "" || r.Time.After(to) {
			continue
		}
		id := callOf(r.LinkedID)
		if r.Event == "LINKEDID_END" && id == r.LinkedID {
			ended[id] = true
		}
		if _, ok := byCall[id]; !ok {
			order = append(order, id)
		}
		byCall[id] = append(byCall[id], r)
	}
	dials := map[string]cdrRow{} // by dstchannel
	ran := map[string]cdrRow{}   // by channel, of the rows that dialled none
	for _, r := range cdrs {
		if r.DstChannel != "" && ended[r.LinkedID] {
			dials[r.DstChannel] = r
		}
		if r.DstChannel == "" && ended[r.LinkedID] {
			ran[r.Channel] = r
		}
	}
	// FreePBX keeps eventtime in whole seconds (DATETIME): then the rows
	// still say which second each event fell in, and in which order (by
	// their id), but not how far apart within it, so a talk duration
	// counted from them may be a second off the true one.
	unseen := unseenByCEL
	if wholeSeconds(cel) {
		unseen = append(slices.Clip(unseenByCEL), "talk_duration")
	}
	calls := make([]Call, 0, len(order))
	for _, id := range order {
		rows := byCall[id]
		slices.SortStableFunc(rows, func(a, b celRow) int { return a.Time.Compare(b.Time) })
		calls = append(calls, tellAsterisk(id, rows, dials, ran, unseen))
	}
	sortCalls(calls)
	return calls
}

type astChan struct {
	snap     cdr.Channel
	dialed   bool // a Dial input made it some leg's callee
	answered bool
	settled  bool // its dial has a final status
	cause    int
	// dialer is the leg that dialled it, dialString what it dialled.
	dialer     *astChan
	dialString string
	// runs is set on a leg that runs dialplan of its own (the caller, an
	// extension that began a call, the dialling half of a Local channel):
	// its applications are told as ARI's ChannelDialplan.
	runs               bool
	app, data, context string
	parkLot            string    // PARK_START seen: its next bridge is the lot's
	last               string    // its latest row's event
	at                 time.Time // and its time
	exten              string    // the extension it began in
}

func tellAsterisk(linked string, rows []celRow, dials, ran map[string]cdrRow, unseen []string) Call {
	c := Call{ID: linked}
	chans := map[string]*astChan{}
	byName := map[string]*astChan{}
	members := map[string]map[string]bool{} // bridge id -> uniqueids in it
	// ARI tells a blind transfer keyed in (the transferer's last digits
	// end it: Asterisk's feature code) once the transferee's dialplan has
	// created the channel it dials next, just before that dial; one the
	// phone asked for (a SIP REFER) at once. The first waits for its
	// transferee's next dial, and takes its time.
	blind := map[*astChan]cdr.Input{}
	var origin, local *astChan // local: the newest Local ;2 half still up
	emit := func(in cdr.Input) {
		in.Books = true
		// The CEL has no row for a recording (MixMonitor, Monitor): a
		// call the books tell may have been recorded unseen.
		in.Estimated = unseen
		c.Inputs = append(c.Inputs, in)
	}
	// dialplan says a leg that runs dialplan runs app now, as ARI's
	// ChannelDialplan.
	dialplan := func(ch *astChan, at time.Time, context, exten, app, data string) {
		if ch == nil || !ch.runs || app == "" || (app == ch.app && data == ch.data && context == ch.context) {
			return
		}
		ch.app, ch.data, ch.context = app, data, context
		ch.snap.Context, ch.snap.Exten, ch.snap.App, ch.snap.AppData = context, exten, app, data
		emit(cdr.Input{Kind: cdr.KindDialplan, Time: at, Channel: ch.snap})
	}
	// dialOf finds the leg that dialled channel name, and its dial: the
	// CDR row that names it, else a later row of a leg running a dial
	// that targets it, else the caller's later rows running a queue.
	dialOf := func(name string, from int) (dialer *astChan, app, data string) {
		if d, ok := dials[name]; ok && d.LastApp != "" {
			if by := byName[d.Channel]; by != nil {
				return by, d.LastApp, d.LastData
			}
			return origin, d.LastApp, d.LastData
		}
		tech, _, _ := strings.Cut(name, "-")
		for _, r := range rows[from:] {
			if r.Chan != name && isDialApp(r.App) && targets(r.AppData, tech) {
				if by := chans[r.UniqueID]; by != nil {
					return by, r.App, r.AppData
				}
			}
		}
		// A queue or a follow-me names no device: the caller's later
		// rows running one dialled it. A Dial of other devices did not.
		for _, r := range rows[from:] {
			if origin != nil && r.UniqueID == origin.snap.ID && isDialApp(r.App) && !strings.Contains(r.AppData, "/") {
				return origin, r.App, r.AppData
			}
		}
		// Still ringing when the books were read: neither a CDR nor a
		// later row names the dial yet. The channel the PBX created for
		// the call names the device dialled, by the newest half of a
		// Local channel still running dialplan (a transfer's
		// consultation, a follow-me), else by the caller; a device not
		// named by digits (a trunk, not an extension's phone) dialled by
		// a leg the dialplan sent to a number (a transfer to an outside
		// number) was dialled for that number. A trunk dialled for a
		// number no row names (a forward after no answer, t07) names no
		// dial: told as a Dial of the trunk, it would be a step to an
		// extension named after it. The list shows the caller's Dial.
		if !strings.HasPrefix(name, "Local/") && strings.Contains(tech, "/") {
			by := cmp.Or(local, origin)
			_, device, _ := strings.Cut(tech, "/")
			switch {
			case isNumber(device):
				return by, "Dial", tech
			case isNumber(by.snap.Exten) && by.snap.Exten != by.exten:
				return by, "Dial", tech[:len(tech)-len(device)] + by.snap.Exten + "@" + device
			}
		}
		return nil, "", ""
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
		if r.Event != "CHAN_START" {
			dialplan(ch, r.Time, r.Context, r.Exten, r.App, r.AppData)
		}
		var extra celExtra
		if strings.HasPrefix(r.Extra, "{") {
			_ = json.Unmarshal([]byte(r.Extra), &extra) // a row's extra is informative; a bad one costs a detail, not the call
		}
		switch r.Event {
		case "CHAN_START":
			ch.snap.Context, ch.snap.Exten, ch.exten = r.Context, r.Exten, r.Exten
			if r.UniqueID == linked || origin == nil && r.UniqueID == r.LinkedID {
				origin = ch
				ch.snap.State, ch.runs, ch.context = "Ring", true, r.Context
				emit(cdr.Input{Kind: cdr.KindCreated, Time: r.Time, Channel: ch.snap})
				continue
			}
			if r.UniqueID == r.LinkedID {
				// A call of its own that joins this one later (a pickup,
				// a parked call's retrieval).
				ch.snap.State, ch.runs, ch.context = "Ring", true, r.Context
				emit(cdr.Input{Kind: cdr.KindCreated, Time: r.Time, Channel: ch.snap})
				continue
			}
			// ARI names no linkedid: a leg joins its call by the dial that made it.
			if strings.HasPrefix(r.Chan, "Local/") && strings.HasSuffix(r.Chan, ";2") {
				// A Local channel's second half runs the dialplan.
				ch.snap.State, ch.runs, ch.context = "Ring", true, r.Context
				local = ch
			}
			emit(cdr.Input{Kind: cdr.KindCreated, Time: r.Time, Channel: ch.snap})
			if origin == nil || strings.HasPrefix(r.Chan, "Local/") {
				continue
			}
			dialer, app, data := dialOf(r.Chan, i)
			if dialer == nil || !isDialApp(app) {
				continue
			}
			if dialer == origin {
				// The number the caller presents is set before its Dial
				// (an outbound route's CALLERID(num)); CEL shows it on
				// the caller's next row.
				for _, n := range rows[i+1:] {
					if n.UniqueID == origin.snap.ID {
						if n.CIDNum != "" {
							origin.snap.CallerNumber = n.CIDNum
						}
						break
					}
				}
			}
			// The callee's caller id is set before the PBX dials it (a
			// forward presents the number called); CEL shows it on the
			// callee's next row.
			for _, n := range rows[i+1:] {
				if n.UniqueID == ch.snap.ID {
					if n.CIDNum != "" {
						ch.snap.CallerNumber = n.CIDNum
					}
					break
				}
			}
			dialplan(dialer, r.Time, dialer.snap.Context, dialer.snap.Exten, app, data)
			if tr, ok := blind[dialer]; ok {
				delete(blind, dialer)
				tr.Time = r.Time
				emit(tr)
			}
			ch.dialed, ch.dialer, ch.dialString = true, dialer, dialString(data, r.Chan)
			emit(cdr.Input{Kind: cdr.KindDial, Time: r.Time, Channel: ch.snap, Other: ptr(dialer.snap), DialString: ch.dialString})
		case "ANSWER":
			ch.snap.State = "Up"
			ch.answered = true
			emit(cdr.Input{Kind: cdr.KindState, Time: r.Time, Channel: ch.snap})
			if ch.dialed && !ch.settled {
				ch.settled = true
				emit(cdr.Input{Kind: cdr.KindDial, Time: r.Time, Channel: ch.snap, Other: ptr(ch.dialer.snap), DialStatus: "ANSWER"})
			}
		case "BRIDGE_ENTER", "BRIDGE_EXIT":
			in := cdr.Input{Kind: cdr.KindBridgeEnter, Time: r.Time, Channel: ch.snap, Bridge: extra.BridgeID}
			if members[extra.BridgeID] == nil {
				members[extra.BridgeID] = map[string]bool{}
			}
			if r.Event == "BRIDGE_EXIT" {
				in.Kind = cdr.KindBridgeLeave
				delete(members[extra.BridgeID], r.UniqueID)
			} else {
				members[extra.BridgeID][r.UniqueID] = true
				if ch.parkLot != "" {
					// The lot's holding bridge: ARI tells the park here.
					in.Kind, in.Target = cdr.KindPark, ch.parkLot
					ch.parkLot = ""
				} else if p := byName[r.Peer]; p != nil && r.Peer != "" {
					in.Other = ptr(p.snap)
				}
			}
			emit(in)
		case "PARK_START":
			ch.parkLot = cmp.Or(extra.ParkingLot, "default")
		case "BLINDTRANSFER":
			if t := chans[extra.Transferee]; t != nil {
				in := cdr.Input{Kind: cdr.KindTransfer, Time: r.Time, Channel: t.snap, Detail: "blind", Target: extra.Extension, Books: true, Estimated: unseen}
				if ch.last == "DTMF" {
					blind[t] = in
				} else {
					emit(in)
				}
			}
		case "ATTENDEDTRANSFER":
			t := chans[extra.Transferee]
			if t == nil {
				break
			}
			// The target is the channel the transferer consulted, now in
			// a bridge with the transferee: whoever shares one of the two
			// bridges, the transferer's legs aside.
			target := chans[extra.Target]
			for _, b := range []string{extra.Bridge1, extra.Bridge2} {
				for id := range members[b] {
					if target == nil && id != t.snap.ID && id != extra.Channel2 && id != r.UniqueID {
						target = chans[id]
					}
				}
			}
			in := cdr.Input{Kind: cdr.KindTransfer, Time: r.Time, Channel: t.snap, Detail: "attended"}
			if target != nil {
				in.Other, in.Target = ptr(target.snap), cmp.Or(target.snap.CallerNumber, target.snap.Exten)
			}
			emit(in)
		case "PICKUP":
			// ch rang and another extension took the call: ARI tells the
			// ringing leg's dial cancelled, and the picker as the dialled
			// leg that answered.
			p := chans[extra.Picker]
			if p == nil || !ch.dialed || ch.settled {
				break
			}
			ch.settled = true
			emit(cdr.Input{Kind: cdr.KindDial, Time: r.Time, Channel: ch.snap, Other: ptr(ch.dialer.snap), DialStatus: "CANCEL", DialString: ch.dialString})
			p.dialed, p.settled, p.dialer, p.dialString = true, true, ch.dialer, ch.dialString
			emit(cdr.Input{Kind: cdr.KindDial, Time: r.Time, Channel: p.snap, Other: ptr(ch.dialer.snap), DialString: ch.dialString})
			emit(cdr.Input{Kind: cdr.KindDial, Time: r.Time, Channel: p.snap, Other: ptr(ch.dialer.snap), DialStatus: "ANSWER"})
		case "DTMF":
			if extra.Digit != "" {
				emit(cdr.Input{Kind: cdr.KindDTMF, Time: r.Time, Channel: ch.snap, Digit: extra.Digit})
			}
		case "HANGUP":
			if d, ok := ran[r.Chan]; ok && isFaxApp(d.LastApp) && !ch.at.IsZero() {
				// The CEL records the start of a few applications only
				// (cel.conf's apps): the CDR's lastapp names the one the
				// leg ran last, since its previous row (ReceiveFAX after
				// Answer), as ARI's ChannelDialplan would have.
				dialplan(ch, ch.at, ch.snap.Context, ch.snap.Exten, d.LastApp, d.LastData)
			}
			ch.cause = extra.HangupCause
			if ch == origin && extra.DialStatus != "" {
				emit(cdr.Input{Kind: cdr.KindVar, Time: r.Time, Channel: ch.snap, Var: "DIALSTATUS", Value: extra.DialStatus})
			}
			if ch.dialed && !ch.settled {
				ch.settled = true
				emit(cdr.Input{Kind: cdr.KindDial, Time: r.Time, Channel: ch.snap, Other: ptr(ch.dialer.snap),
					DialStatus: dialOutcome(dials[r.Chan].Disposition, extra, ch.dialer.snap.Name)})
			}
			// The side that hung up asks first; the other leg's request is
			// the PBX tearing it down.
			soft := extra.HangupSource != "" && extra.HangupSource != r.Chan
			emit(cdr.Input{Kind: cdr.KindHangupRequest, Time: r.Time, Channel: ch.snap, Cause: extra.HangupCause, Soft: soft})
		case "CHAN_END":
			if ch == local {
				local = nil
			}
			in := cdr.Input{Kind: cdr.KindDestroyed, Time: r.Time, Channel: ch.snap, Cause: ch.cause}
			if ch.cause != 0 {
				// 0 is no cause (ARI: "Unknown"), not one to name.
				in.CauseName = cdr.CauseName(ch.cause)
			}
			emit(in)
		}
		ch.last, ch.at = r.Event, r.Time
	}
	// A transfer whose next dial the rows do not hold yet (or that dials
	// nothing: a transfer to a menu, a voicemail) is told at its time.
	for _, tr := range blind {
		c.Inputs = append(c.Inputs, tr)
	}
	slices.SortStableFunc(c.Inputs, func(a, b cdr.Input) int { return a.Time.Compare(b.Time) })
	return c
}

// unseenByCEL are the record's fields no CEL row states.
var unseenByCEL = []string{"call_record"}

// wholeSeconds reports whether the rows keep whole seconds only: none
// has a fraction (with microseconds, all of them but one in a million
// would).
func wholeSeconds(cel []celRow) bool {
	return len(cel) > 0 && !slices.ContainsFunc(cel, func(r celRow) bool { return r.Time.Nanosecond() != 0 })
}

// targets reports whether a dial's data (PJSIP/1000&PJSIP/1001,20, or
// PJSIP/05321234567@trunk) dials the device tech (PJSIP/1001,
// PJSIP/trunk).
func targets(data, tech string) bool {
	list, _, _ := strings.Cut(data, ",")
	return slices.ContainsFunc(strings.Split(list, "&"), func(t string) bool { return dials(t, tech) })
}

// dials reports whether one dial target (PJSIP/1001, PJSIP/1001/sip:...,
// PJSIP/05321234567@trunk: a number through an endpoint) reaches the
// device tech.
func dials(target, tech string) bool {
	if strings.EqualFold(target, tech) || strings.HasPrefix(target, tech+"/") {
		return true
	}
	if kind, rest, ok := strings.Cut(target, "/"); ok {
		_, endpoint, ok := strings.Cut(rest, "@")
		return ok && strings.EqualFold(kind+"/"+endpoint, tech)
	}
	return false
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

// isNumber reports whether s is a dialled number (digits, a leading +).
func isNumber(s string) bool {
	s = strings.TrimPrefix(s, "+")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func isDialApp(app string) bool {
	switch strings.ToLower(app) {
	case "dial", "queue", "followme":
		return true
	}
	return false
}

// dialString is what ARI's Dial names as the dialstring of the part of a
// Dial's data that reached channel name: the target without its
// technology (1000 for PJSIP/1000 reaching PJSIP/1000-00000001,
// 05321234567@trunk for PJSIP/05321234567@trunk), else the data's first
// target's; for a queue's, the member's interface.
func dialString(data, name string) string {
	list, _, _ := strings.Cut(data, ",")
	tech, _, _ := strings.Cut(name, "-")
	pick, _, _ := strings.Cut(list, "&")
	for _, t := range strings.Split(list, "&") {
		if dials(t, tech) {
			pick = t
			break
		}
	}
	if _, resource, ok := strings.Cut(pick, "/"); ok {
		return resource
	}
	// A queue's data names the queue, not its members: ARI names the
	// member's interface (PJSIP/1002).
	return tech
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

// isFaxApp: Asterisk's application that receives a fax, which no CEL row
// names.
func isFaxApp(app string) bool { return strings.EqualFold(app, "ReceiveFAX") }
