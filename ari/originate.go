package ari

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Originate is a call kanca asks Asterisk to place (POST /ari/channels).
// Either App (the channel waits in Stasis for commands: play, hang up) or
// Context and Extension (the answered channel runs that dialplan: a menu,
// group or extension) is set.
type Originate struct {
	ChannelID string        // the id Asterisk gives the channel (channelId): kanca picks it so it can tell the tracker first
	Endpoint  string        // PJSIP/05321234567@carrier
	CallerID  string        // the PBX number presented
	Timeout   time.Duration // of ringing; Asterisk cancels after it (cause 19)
	App       string
	Context   string
	Extension string
}

// Originate asks Asterisk to place o. Asterisk answers 200 at once,
// whatever happens to the call: busy and no answer arrive as events
// (ChannelDestroyed cause 17 or 19), answer as ChannelStateChange Up.
func (c *Client) Originate(ctx context.Context, o Originate) error {
	if o.Endpoint == "" {
		return errors.New("originate: no endpoint")
	}
	q := url.Values{}
	q.Set("endpoint", o.Endpoint)
	if o.ChannelID != "" {
		q.Set("channelId", o.ChannelID)
	}
	if o.CallerID != "" {
		q.Set("callerId", o.CallerID)
	}
	if o.Timeout > 0 {
		q.Set("timeout", strconv.Itoa(int(o.Timeout/time.Second)))
	}
	switch {
	case o.App != "":
		q.Set("app", o.App)
	case o.Context != "" && o.Extension != "":
		q.Set("context", o.Context)
		q.Set("extension", o.Extension)
		q.Set("priority", "1")
	default:
		return errors.New("originate: neither an application nor a dialplan extension to run")
	}
	return c.Do(ctx, http.MethodPost, "/channels?"+q.Encode(), nil, nil)
}

// Play plays media on a channel in Stasis: "sound:http://..." (fetched by
// res_http_media_cache), "sound:NAME" for a sound of Asterisk's. Playbacks
// asked one after another queue on the channel.
func (c *Client) Play(ctx context.Context, channel, media string) error {
	return c.Do(ctx, http.MethodPost, "/channels/"+url.PathEscape(channel)+"/play?"+url.Values{"media": {media}}.Encode(), nil, nil)
}

// Hangup hangs a channel up (DELETE /ari/channels/{id}); a channel already
// gone is not an error.
func (c *Client) Hangup(ctx context.Context, channel string) error {
	err := c.Do(ctx, http.MethodDelete, "/channels/"+url.PathEscape(channel), nil, nil)
	if err != nil && strings.Contains(err.Error(), "HTTP 404") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hang up %s: %w", channel, err)
	}
	return nil
}
