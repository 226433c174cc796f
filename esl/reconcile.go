package esl

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kanca/kanca/cdr"
)

// row is one channel as "show channels as json" lists it: a row of
// FreeSWITCH's core database table channels, every value a string. Only
// the columns kanca reads are named.
type row struct {
	UUID         string `json:"uuid"`
	Direction    string `json:"direction"`
	CreatedEpoch string `json:"created_epoch"`
	Name         string `json:"name"`
	State        string `json:"state"`
	CIDName      string `json:"cid_name"`
	CIDNum       string `json:"cid_num"`
	Dest         string `json:"dest"`
	Context      string `json:"context"`
	Hostname     string `json:"hostname"` // the switch name, as events' FreeSWITCH-Switchname
	Callstate    string `json:"callstate"`
	CalleeNum    string `json:"callee_num"`
	CallUUID     string `json:"call_uuid"`
	InitialDest  string `json:"initial_dest"`
}

// parseChannels reads the answer to "show channels as json":
// {"row_count":N,"rows":[...]}, and {"row_count": 0} with no rows.
func parseChannels(body string) ([]row, error) {
	var list struct {
		RowCount *int  `json:"row_count"`
		Rows     []row `json:"rows"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, fmt.Errorf("show channels as json: %w: %s", ErrMalformed, excerpt([]byte(body)))
	}
	if list.RowCount == nil {
		return nil, fmt.Errorf("show channels as json: %w: no row_count", ErrMalformed)
	}
	return list.Rows, nil
}

// CountChannels asks c for the channel list the Source reconciles with and
// counts it; an error means reconciliation would fail the same way.
func CountChannels(ctx context.Context, c *Conn) (int, error) {
	body, err := c.API(ctx, "show channels as json")
	if err != nil {
		return 0, err
	}
	rows, err := parseChannels(body)
	return len(rows), err
}

// channel is the snapshot a listed channel stands for when it is adopted,
// shaped as DecodeFields shapes an event's channel.
func (r row) channel() cdr.Channel {
	ch := cdr.Channel{
		ID:              r.UUID,
		Name:            r.Name,
		LinkedID:        r.UUID,
		CallerNumber:    r.CIDNum,
		CallerName:      r.CIDName,
		ConnectedNumber: r.CalleeNum,
		Context:         r.Context,
		// The tracker reads the number a leg was created for; after a
		// transfer dest is the new target and initial_dest the DID.
		Exten:        cmp.Or(r.InitialDest, r.Dest),
		DialedNumber: r.InitialDest,
	}
	// A leg FreeSWITCH originated for another carries that leg's id as its
	// call_uuid from CHANNEL_ORIGINATE on; a leg of its own carries its own
	// id, or none before it is bridged.
	bLeg := r.CallUUID != "" && r.CallUUID != r.UUID
	if bLeg {
		ch.LinkedID = r.CallUUID
	}
	switch r.Callstate {
	case "ACTIVE", "HELD", "UNHELD":
		ch.State = "Up"
	case "EARLY":
		ch.State = "Ringing"
	default:
		ch.State = "Ring"
		if bLeg {
			ch.State = "Ringing"
		}
	}
	if sec, err := strconv.ParseInt(r.CreatedEpoch, 10, 64); err == nil && sec > 0 {
		ch.Created = time.Unix(sec, 0)
	}
	return ch
}

// reconcile compares the channels the Source remembers with the channels
// FreeSWITCH lists and emits what the stream could not say while nobody
// was listening:
//
//   - KindGone for a remembered channel that is no longer listed, unless
//     its end is among the events that came before the list (early): those
//     say it precisely. Its Time is the latest event time handled: the
//     moment the connection dropped as far as the Source can tell.
//   - for a listed channel the Source did not know, a KindCreated with the
//     listed snapshot, so a call born in the gap (or in progress when kanca
//     starts) is adopted;
//   - for a remembered channel listed as answered, a KindState Up.
//
// The list is taken after the subscription, so events queued behind it
// may describe the same channels: the last two are held until the
// channel's next event settles them (see settle), lest a snapshot stand
// for a channel whose own CHANNEL_CREATE is on its way. The list has no
// clock of its own: they are placed at the latest event time handled (or
// the channel's creation, when later), and no later than that next event.
func (s *Source) reconcile(rows []row, early []Fields, emit func(cdr.Input)) {
	ended := map[string]bool{}
	for _, f := range early {
		switch f["event-name"] {
		case "CHANNEL_HANGUP_COMPLETE", "CHANNEL_DESTROY":
			ended[f["unique-id"]] = true
		}
	}
	present := make(map[string]bool, len(rows))
	for _, r := range rows {
		if r.UUID != "" {
			present[r.UUID] = true
		}
	}

	var gone []liveChannel
	for id, lc := range s.live {
		if !present[id] && !ended[id] {
			gone = append(gone, lc)
		}
	}
	// Map order is random; creation order keeps the output reproducible.
	slices.SortFunc(gone, func(a, b liveChannel) int {
		return cmp.Or(a.ch.Created.Compare(b.ch.Created), strings.Compare(a.ch.ID, b.ch.ID))
	})
	dropped := s.lastTime
	if dropped.IsZero() {
		dropped = time.Now()
	}
	for _, lc := range gone {
		delete(s.live, lc.ch.ID)
		emit(cdr.Input{Kind: cdr.KindGone, Time: dropped, Server: lc.server, Channel: lc.ch})
	}

	for id := range s.pending {
		if !present[id] {
			delete(s.pending, id)
		}
	}
	pending := 0
	for _, r := range rows {
		if r.UUID == "" {
			continue
		}
		ch := r.channel()
		at := ch.Created
		if s.lastTime.After(at) {
			at = s.lastTime
		}
		lc, known := s.live[r.UUID]
		switch {
		case !known:
			pending++
			s.pending[r.UUID] = pendingChannel{lc: liveChannel{ch: ch, server: r.Hostname}, adopt: true, at: at}
		case ch.State == "Up" && lc.ch.State != "Up":
			// Only an answer matters to the tracker; the list's other
			// states are coarser than the events' and would only differ.
			lc.ch.State = "Up"
			pending++
			s.pending[r.UUID] = pendingChannel{lc: lc, at: at}
		}
	}

	s.mu.Lock()
	s.stats.Gone += uint64(len(gone))
	s.mu.Unlock()
	if len(gone) > 0 || pending > 0 {
		s.log.Info("reconciled channels with FreeSWITCH", "gone", len(gone), "to_adopt_or_update", pending, "live", len(s.live))
	}
}
