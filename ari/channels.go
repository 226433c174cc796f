package ari

import (
	"context"
	"fmt"
	"net/http"

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
	}
	return l, nil
}
