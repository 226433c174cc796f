package ari

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/follow"
)

// list asks Asterisk for its channels, for the Follower's reconciliation
// (the rules live in package follow). The list is ARI's own snapshots,
// shaped as the frames' are, and carries Asterisk's clock in the answer's
// Date header (whole seconds).
func (s *Source) list(ctx context.Context) (follow.Listing, error) {
	var listed []channel
	h, err := s.client.do(ctx, http.MethodGet, "/channels", nil, &listed)
	if err != nil {
		return follow.Listing{}, err
	}
	var l follow.Listing
	l.At, _ = http.ParseTime(h.Get("Date"))
	for i := range listed {
		if listed[i].ID == "" {
			continue
		}
		ch, err := listed[i].toCDR()
		if err != nil {
			return follow.Listing{}, fmt.Errorf("GET /channels: %w", err)
		}
		l.Channels = append(l.Channels, follow.Listed{Channel: ch})
	}
	if len(l.Channels) > 0 {
		// The list does not name the server; inputs must, so that call ids
		// stay unique across PBXs. Asked only when something is listed.
		info, err := s.client.Info(ctx)
		if err != nil {
			return follow.Listing{}, err
		}
		for i := range l.Channels {
			l.Channels[i].Server = info.EntityID
		}
		if err := s.listBridges(ctx, l.Channels); err != nil {
			return follow.Listing{}, err
		}
	}
	return l, nil
}

// bridgeSnapshot is what kanca reads of ARI's Bridge model
// (rest-api/api-docs/bridges.json), as GET /bridges lists it.
type bridgeSnapshot struct {
	ID       string   `json:"id"`
	Type     string   `json:"bridge_type"`
	Class    string   `json:"bridge_class"`
	Channels []string `json:"channels"`
}

// listBridges names, on each listed channel, the bridge it talks in
// (follow.Listed.Bridge). Only the bridges Dial, Queue, a pickup, a
// parked call's retrieval and transfers make join calls (class "basic",
// mixing); a parking lot's holding bridge and a conference do not.
func (s *Source) listBridges(ctx context.Context, chans []follow.Listed) error {
	var bridges []bridgeSnapshot
	if _, err := s.client.do(ctx, http.MethodGet, "/bridges", nil, &bridges); err != nil {
		return err
	}
	in := map[string]string{}
	for _, b := range bridges {
		if b.Class != "basic" || b.Type != "mixing" || len(b.Channels) < 2 {
			continue
		}
		for _, id := range b.Channels {
			in[id] = b.ID
		}
	}
	for i := range chans {
		chans[i].Bridge = in[chans[i].Channel.ID]
	}
	return nil
}

// Describe asks Asterisk, for each channel about to be adopted, what its
// snapshot does not say (see follow.Describer): the call it belongs to
// (CHANNEL(linkedid), when channelvars does not carry it), the number it
// was dialled as (CALLERID(dnid)), the file MixMonitor records it to
// (MIXMONITOR_FILENAME) and the DID variables. Mid-call, a
// snapshot's extension is where the dialplan sent the call (1000 after a
// Goto to an extension), not the number it arrived on.
func (w *session) Describe(ctx context.Context, chans []*cdr.Channel) error {
	for _, ch := range chans {
		if err := w.src.describe(ctx, ch); err != nil {
			return err
		}
	}
	return nil
}

func (s *Source) describe(ctx context.Context, ch *cdr.Channel) error {
	if ch.LinkedID == "" {
		v, err := s.variable(ctx, ch.ID, linkedIDVar)
		if err != nil {
			return err
		}
		ch.LinkedID = v
	}
	// A leg of another channel's call came in on its own and joined it
	// (a picker, a parked call's retriever): what it dialled is a feature
	// code, not how the call reached it. A callee has none (Dial sets no
	// dialed number on the channels it creates, app_dial.c).
	if ch.DialedNumber == "" && (ch.LinkedID == "" || ch.LinkedID == ch.ID) {
		v, err := s.variable(ctx, ch.ID, "CALLERID(dnid)")
		if err != nil {
			return err
		}
		ch.DialedNumber = v
	}
	// A recording begun in the gap (MixMonitor) leaves no event to come
	// and no row in the CEL; the variable it sets names its file.
	rec, err := s.variable(ctx, ch.ID, recordingVar)
	if err != nil {
		return err
	}
	ch.Recording = rec
	seen := map[string]bool{}
	for _, name := range s.cfg.DIDVariables {
		// An inherited variable (__DID) is kept under its bare name.
		bare := strings.TrimLeft(name, "_")
		if seen[bare] || ch.Vars[name] != "" {
			continue
		}
		seen[bare] = true
		v, err := s.variable(ctx, ch.ID, bare)
		if err != nil {
			return err
		}
		if v == "" {
			continue
		}
		ch.WithVar(bare, v)
	}
	return nil
}

// variable reads one channel variable or function; "" when the channel
// or the variable is gone (404), or the function cannot be read (500).
func (s *Source) variable(ctx context.Context, id, name string) (string, error) {
	var v struct {
		Value string `json:"value"`
	}
	path := "/channels/" + url.PathEscape(id) + "/variable?" + url.Values{"variable": {name}}.Encode()
	err := s.client.Do(ctx, http.MethodGet, path, nil, &v)
	var st *httpStatusError
	if errors.As(err, &st) && (st.code == http.StatusNotFound || st.code == http.StatusInternalServerError) {
		return "", nil
	}
	return v.Value, err
}
