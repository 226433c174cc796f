package ari

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/kanca/kanca/cdr"
)

// Info is what GET /ari/asterisk/info says about the Asterisk behind the URL.
type Info struct {
	Version  string // e.g. 20.20.1
	EntityID string // the asterisk_id every event carries
}

// Info asks Asterisk who it is. It checks the URL and credentials without
// subscribing to anything.
func (s *Source) Info(ctx context.Context) (Info, error) {
	var body struct {
		System struct {
			Version  string `json:"version"`
			EntityID string `json:"entity_id"`
		} `json:"system"`
	}
	if _, err := s.get(ctx, "/asterisk/info", &body); err != nil {
		return Info{}, err
	}
	return Info{Version: body.System.Version, EntityID: body.System.EntityID}, nil
}

// get fetches a REST path under /ari and decodes its JSON answer into v. It
// returns the answer's Date, Asterisk's clock, zero when absent.
func (s *Source) get(ctx context.Context, path string, v any) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.HTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.restURL+path, nil)
	if err != nil {
		return time.Time{}, fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("Authorization", s.auth)
	resp, err := s.client.Do(req)
	if err != nil {
		return time.Time{}, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp); err != nil {
		return time.Time{}, fmt.Errorf("GET %s: %w", path, err)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(v); err != nil {
		return time.Time{}, fmt.Errorf("GET %s: decode: %w", path, err)
	}
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	return date, nil
}

// reconcile compares the channels the Source remembers with the channels
// Asterisk lists and emits what the stream could not say while nobody was
// listening:
//
//   - KindGone for a remembered channel that is no longer listed. Its Time is
//     the latest event time seen before the list: the moment the connection
//     dropped as far as the Source can tell; the channel ended at or after it.
//   - KindCreated for a listed channel the Source did not know, so a call born
//     in the gap (or in progress when kanca starts) is adopted. Its Time is
//     Asterisk's clock from the answer's Date header, or the channel's
//     creation time when that is later (Date has whole seconds) or absent.
//   - KindState for a remembered channel whose state changed in the gap
//     (typically answered), at Asterisk's clock, with the listed snapshot.
//
// The list is taken after the subscription, so frames already queued may
// describe the same channels: the last two are held until the channel's
// next frame settles them (see settle), lest a snapshot taken mid-call
// stand for a channel whose own ChannelCreated is on its way.
func (s *Source) reconcile(ctx context.Context, emit func(cdr.Input)) error {
	var listed []channel
	date, err := s.get(ctx, "/channels", &listed)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	snaps := make([]cdr.Channel, 0, len(listed))
	present := make(map[string]bool, len(listed))
	for i := range listed {
		if listed[i].ID == "" {
			continue
		}
		ch, err := listed[i].toCDR()
		if err != nil {
			return fmt.Errorf("reconcile: GET /channels: %w", err)
		}
		snaps = append(snaps, ch)
		present[ch.ID] = true
	}

	var server string
	if len(snaps) > 0 {
		// The list does not name the server; inputs must, so that call ids
		// stay unique across PBXs. Asked only when something is adopted.
		info, err := s.Info(ctx)
		if err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		server = info.EntityID
	}

	var gone []liveChannel
	for id, lc := range s.live {
		if !present[id] {
			gone = append(gone, lc)
		}
	}
	// Map order is random; creation order keeps the output reproducible.
	slices.SortFunc(gone, func(a, b liveChannel) int {
		return cmp.Or(a.ch.Created.Compare(b.ch.Created), cmp.Compare(a.ch.ID, b.ch.ID))
	})
	dropped := s.lastTime
	if dropped.IsZero() {
		// Nothing was ever timed: neither a frame nor a Date header.
		dropped = time.Now()
	}
	for _, lc := range gone {
		delete(s.live, lc.ch.ID)
		emit(cdr.Input{Kind: cdr.KindGone, Time: dropped, Server: lc.server, Channel: lc.ch})
	}

	now := date
	if now.IsZero() {
		now = dropped
	}
	for id := range s.pending {
		if !present[id] {
			delete(s.pending, id)
		}
	}
	pending := 0
	for _, ch := range snaps {
		lc, known := s.live[ch.ID]
		switch {
		case !known:
			pending++
			s.pending[ch.ID] = pendingChannel{lc: liveChannel{ch: ch, server: server}, adopt: true, at: later(date, ch.Created)}
		case lc.ch.State != ch.State:
			lc.ch = ch
			pending++
			s.pending[ch.ID] = pendingChannel{lc: lc, at: later(now, ch.Created)}
		default:
			lc.ch = ch
			s.live[ch.ID] = lc
		}
	}
	if date.After(s.lastTime) {
		s.lastTime = date
	}

	s.mu.Lock()
	s.stats.Gone += uint64(len(gone))
	s.mu.Unlock()
	if len(gone) > 0 || pending > 0 {
		s.log.Info("reconciled channels with Asterisk", "gone", len(gone), "to_adopt_or_update", pending, "live", len(s.live))
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
