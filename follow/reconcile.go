package follow

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/kanca/kanca/cdr"
)

// reconcile compares the channels the Follower remembers with the channels
// the PBX lists and emits what the stream could not say while nobody was
// listening:
//
//   - KindGone for a remembered channel that is no longer listed, unless
//     its end is among the events read before the list (Listing.Ended):
//     those say it precisely. Its Time is the latest event time seen
//     before the list: the moment the connection dropped as far as the
//     Follower can tell; the channel ended at or after it.
//   - KindCreated for a listed channel the Follower did not know, so a
//     call born in the gap (or in progress when kanca starts) is adopted.
//   - KindState for a remembered channel whose state changed in the gap
//     (typically answered), with the listed snapshot (the remembered one,
//     answered, when the list is coarse).
//   - KindDialplan for a remembered channel the list shows running
//     another application (a coarse list: by the application alone): a
//     caller that left a menu for an extension in the gap, so the legs it
//     dialled join the step they belong to.
//
// The list is taken after the subscription, so events queued behind it
// may describe the same channels: the last two are held until the
// channel's next event settles them (see settle), lest a snapshot taken
// mid-call stand for a channel whose own creation is on its way. They are
// placed at the PBX's clock at the list (the latest event time seen when
// the list has none), or the channel's creation when later, and no later
// than that next event.
func (f *Follower) reconcile(l Listing, emit func(cdr.Input)) Gap {
	gap := Gap{Since: f.lastTime, Until: f.until(l)}
	present := l.ids()
	gap.Listed = maps.Clone(present)
	gap.Up = maps.Clone(present)
	for id := range l.Ended {
		gap.Listed[id] = true
		delete(gap.Up, id)
	}

	// What the last list said and the connection dropped before anything
	// told it (an answer, a call begun in the gap before) is told now,
	// before this list's ends: a channel this list no longer shows ended
	// after it. One it still shows is said again below.
	var unsettled []pendingChannel
	for id, p := range f.pending {
		if !present[id] {
			unsettled = append(unsettled, p)
		}
	}
	f.settleInOrder(unsettled, cdr.Input{Time: f.lastTime}, emit)

	var gone []liveChannel
	for id, lc := range f.live {
		if !present[id] && !l.Ended[id] {
			gone = append(gone, lc)
		}
	}
	// Map order is random; creation order keeps the output reproducible.
	slices.SortFunc(gone, func(a, b liveChannel) int {
		return cmp.Or(a.ch.Created.Compare(b.ch.Created), cmp.Compare(a.ch.ID, b.ch.ID))
	})
	dropped := f.lastTime
	if dropped.IsZero() {
		// Nothing was ever timed: neither an event nor the list's clock.
		dropped = f.cfg.Now()
	}
	for _, lc := range gone {
		delete(f.live, lc.ch.ID)
		f.track(lc.ch.ID, false)
		emit(cdr.Input{Kind: cdr.KindGone, Time: dropped, Server: lc.server, Channel: lc.ch})
	}

	clock := l.At
	if clock.IsZero() {
		clock = f.lastTime
	}
	for id := range f.pending {
		if !present[id] {
			delete(f.pending, id)
		}
	}
	clear(f.unconfirmed)
	clear(f.unheard)
	f.listBridges(l)
	f.forgetEnded(present)
	pending := 0
	for _, c := range l.Channels {
		ch := c.Channel
		if _, over := f.ended[ch.ID]; ch.ID == "" || over {
			// Over, though a list that lags still shows it.
			continue
		}
		at := later(clock, ch.Created)
		lc, known := f.live[ch.ID]
		if known && ch.State == "Up" && lc.ch.State != "Up" && !ch.Answered.IsZero() && !ch.Answered.After(gap.Until) {
			// An answer the gap hid, when the PBX says it happened.
			at = ch.Answered
		}
		if known && ch.LinkedID == "" {
			// A list that does not name the channel's call (ARI's
			// snapshots carry no linked id) leaves the one kanca knows:
			// the rest of a call's legs are settled by it, before a leg's
			// end ends the call (settleCall).
			ch.LinkedID = lc.ch.LinkedID
		}
		switch {
		case !known:
			pending++
			f.pending[ch.ID] = pendingChannel{lc: liveChannel{ch: ch, server: c.Server}, bridge: c.Bridge, adopt: true, at: at}
		case l.Coarse:
			// Only an answer matters to the tracker; a coarse list's other
			// states would only differ from the events'. So would its
			// numbers: a move is read from the application alone.
			p := pendingChannel{lc: lc, at: at, bridge: c.Bridge}
			if ch.State == "Up" && lc.ch.State != "Up" {
				p.lc.ch.State = "Up"
				p.lc.ch.Answered = ch.Answered // when the PBX says, if it does
				p.changed = true
			}
			if ranAnother(lc.ch, ch) {
				p.lc.ch.App, p.lc.ch.AppData = ch.App, ch.AppData
				p.lc.ch.Routed, p.lc.ch.Queue, p.lc.ch.Queued = ch.Routed, ch.Queue, ch.Queued
				p.moved = true
				if r := ch.Routed; r.After(gap.Since) && !r.After(gap.Until) {
					// The leg got there in the gap, when the PBX says.
					p.movedAt = r
				}
			}
			if p.changed || p.moved {
				pending++
				f.pending[ch.ID] = p
			}
		case lc.ch.State != ch.State || movedIn(lc.ch, ch) || linkedIn(lc.ch, ch):
			p := pendingChannel{lc: lc, at: at, bridge: c.Bridge, changed: lc.ch.State != ch.State || linkedIn(lc.ch, ch), moved: movedIn(lc.ch, ch)}
			p.lc.ch = ch
			pending++
			f.pending[ch.ID] = p
		default:
			lc.ch = ch
			f.live[ch.ID] = lc
		}
		if known {
			f.unconfirmed[ch.ID] = true
		}
		f.unheard[ch.ID] = at
	}
	f.placeMoves(l, gap)
	f.unconfirmedAt = dropped
	if l.At.After(f.lastTime) {
		f.lastTime = l.At
	}

	f.mu.Lock()
	f.stats.Gone += uint64(len(gone))
	f.mu.Unlock()
	if len(gone) > 0 || pending > 0 {
		f.log.Info("reconciled channels with "+f.cfg.PBX, "gone", len(gone), "to_adopt_or_update", pending, "live_channels", len(f.live))
	}
	gap.Gone, gap.Pending = len(gone), pending
	return gap
}

// placeMoves places each move the gap hid (a known channel the list
// shows at another place in the dialplan) when the first new leg of its
// call the list shows was created, within the gap: the move came before
// the legs it made (a menu's caller dialling an extension, a forward
// after no answer), after the last event heard. A list with no clock
// (FreeSWITCH's) would place it at the last event heard, seconds early;
// one with a clock (ARI's HTTP Date) at the list, seconds late. An
// answer the list also shows stays where the list places it.
func (f *Follower) placeMoves(l Listing, gap Gap) {
	// The first creation of a new leg, by the call the list names.
	first := map[string]time.Time{}
	for _, c := range l.Channels {
		ch := c.Channel
		if _, known := f.live[ch.ID]; known || ch.LinkedID == "" || ch.Created.IsZero() {
			continue
		}
		if at, ok := first[ch.LinkedID]; !ok || ch.Created.Before(at) {
			first[ch.LinkedID] = ch.Created
		}
	}
	for id, p := range f.pending {
		if !p.moved {
			continue
		}
		at, ok := first[cmp.Or(p.lc.ch.LinkedID, id)]
		if !ok {
			continue
		}
		if at.Before(gap.Since) {
			at = gap.Since
		}
		if !gap.Until.IsZero() && at.After(gap.Until) {
			at = gap.Until
		}
		p.movedAt = at
		if !p.changed {
			p.at = at
		}
		f.pending[id] = p
	}
}

// ids are the channels l shows.
func (l Listing) ids() map[string]bool {
	ids := make(map[string]bool, len(l.Channels))
	for _, c := range l.Channels {
		if c.Channel.ID != "" {
			ids[c.Channel.ID] = true
		}
	}
	return ids
}

// until is when l was taken: the PBX's clock when the list carries one,
// else the Follower's.
func (f *Follower) until(l Listing) time.Time {
	if l.At.IsZero() {
		return f.cfg.Now()
	}
	return l.At
}

// movedIn says whether a listed channel runs another dialplan application
// than it was last seen running: routing the gap hid. A list that names no
// application says nothing of it.
func movedIn(was, now cdr.Channel) bool {
	return ranAnother(was, now) || now.App != "" && (now.Context != was.Context || now.Exten != was.Exten)
}

// linkedIn says whether a listed channel joined a call in the gap: kanca
// knew of none (a dialled leg waiting for its dial), the PBX now names one.
func linkedIn(was, now cdr.Channel) bool {
	return was.LinkedID == "" && now.LinkedID != "" && now.LinkedID != now.ID
}

// ranAnother says whether a listed channel runs another application, or
// the same with other arguments, than it was last seen running.
func ranAnother(was, now cdr.Channel) bool {
	return now.App != "" && (now.App != was.App || now.AppData != was.AppData)
}

// listBridges keeps the bridges of l: those that join a channel not yet
// followed, to tell once it is adopted (tellBridge), and those of
// followed channels, to tell with a change of theirs the gap hid. A bridged channel
// whose call the PBX did not say (its linked id could not be read) is of
// the call of the oldest channel in its bridge that says one.
func (f *Follower) listBridges(l Listing) {
	clear(f.bridges)
	members := map[string][]int{}
	var order []string
	for i, c := range l.Channels {
		if c.Bridge == "" || c.Channel.ID == "" {
			continue
		}
		if members[c.Bridge] == nil {
			order = append(order, c.Bridge)
		}
		members[c.Bridge] = append(members[c.Bridge], i)
	}
	for _, b := range order {
		idx := members[b]
		if len(idx) < 2 {
			continue
		}
		linked, oldest, unknown := "", time.Time{}, false
		for _, i := range idx {
			ch := l.Channels[i].Channel
			if _, known := f.live[ch.ID]; !known {
				unknown = true
			}
			if ch.LinkedID != "" && (linked == "" || ch.Created.Before(oldest)) {
				linked, oldest = ch.LinkedID, ch.Created
			}
		}
		lb := listedBridge{ids: make([]string, 0, len(idx)), known: !unknown}
		for _, i := range idx {
			lb.at = later(lb.at, l.Channels[i].BridgedAt)
			ch := &l.Channels[i].Channel
			if ch.LinkedID == "" && linked != "" {
				if lc, known := f.live[ch.ID]; !known || lc.ch.LinkedID == "" {
					ch.LinkedID = linked
				}
			}
			lb.ids = append(lb.ids, ch.ID)
		}
		f.bridges[b] = lb
	}
}

// listedBridge is a bridge a list showed: its channels in list order,
// and when it formed, where the list says (Listed.BridgedAt). known: all
// its channels are followed; told only when a change of theirs the gap
// hid is (tellKnownBridge).
type listedBridge struct {
	ids   []string
	at    time.Time
	known bool
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// relist reconciles a second channel list, taken Config.Relist after the
// first, for a PBX whose list lags its stream. It trusts the list only
// where the stream cannot say better:
//
//   - KindGone for a remembered channel the first list showed, of which
//     the stream said nothing since, and that this list no longer shows:
//     its end came before the subscription, so no event will say it. Its
//     Time is the first reconciliation's, the moment the stream was last
//     heard before the gap.
//   - A listed channel neither known nor held (the first list missed it:
//     it was born just before the subscription) is held to be adopted at
//     its next event, as the first list's are.
//   - A held channel no longer listed, whose end is not among the
//     events read while the list was taken, ended before the
//     subscription: nothing will settle it, so it is dropped.
//
// A remembered channel the stream created is never reported gone here,
// however the list lags. It returns how many it reported gone.
func (f *Follower) relist(l Listing, emit func(cdr.Input)) int {
	present := l.ids()
	// A bridge the first list showed whose held channels this list no
	// longer shows (their ends were read while it was taken) still says
	// how they are to be adopted: kept, unless this list shows it anew.
	before := maps.Clone(f.bridges)
	f.listBridges(l)
	for b, lb := range before {
		if _, shown := f.bridges[b]; shown {
			continue
		}
		if slices.ContainsFunc(lb.ids, func(id string) bool { p, held := f.pending[id]; return held && p.adopt && l.Ended[id] }) {
			f.bridges[b] = lb
		}
	}
	var gone []liveChannel
	for id := range f.unconfirmed {
		if lc, ok := f.live[id]; ok && !present[id] && !l.Ended[id] {
			gone = append(gone, lc)
		}
	}
	clear(f.unconfirmed)
	slices.SortFunc(gone, func(a, b liveChannel) int {
		return cmp.Or(a.ch.Created.Compare(b.ch.Created), cmp.Compare(a.ch.ID, b.ch.ID))
	})
	for _, lc := range gone {
		delete(f.live, lc.ch.ID)
		f.track(lc.ch.ID, false)
		emit(cdr.Input{Kind: cdr.KindGone, Time: f.unconfirmedAt, Server: lc.server, Channel: lc.ch})
	}
	for id := range f.pending {
		// One whose end is among the events read while the list was
		// taken ended since the subscription: that end settles it.
		if !present[id] && !l.Ended[id] {
			delete(f.pending, id)
		}
	}
	clock := l.At
	if clock.IsZero() {
		clock = f.lastTime
	}
	f.forgetEnded(present)
	adopt := 0
	for _, c := range l.Channels {
		ch := c.Channel
		if ch.ID == "" {
			continue
		}
		if _, known := f.live[ch.ID]; known {
			continue
		}
		if _, held := f.pending[ch.ID]; held {
			continue
		}
		if _, over := f.ended[ch.ID]; over {
			continue // its end was read: the list lags
		}
		adopt++
		at := later(clock, ch.Created)
		f.pending[ch.ID] = pendingChannel{lc: liveChannel{ch: ch, server: c.Server}, bridge: c.Bridge, adopt: true, at: at}
		f.unheard[ch.ID] = at
	}
	f.mu.Lock()
	f.stats.Gone += uint64(len(gone))
	f.mu.Unlock()
	if len(gone) > 0 || adopt > 0 {
		f.log.Info("listed channels again", "gone", len(gone), "to_adopt", adopt, "live", len(f.live))
	}
	return len(gone)
}
