package esl

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
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
		return nil, fmt.Errorf("show channels as json: %w: %s", ErrMalformed, follow.Excerpt([]byte(body)))
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
