package autodial

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/kanca/kanca/ari"
)

// ARIDialer places calls through Asterisk's REST interface, on the
// client kanca follows Asterisk with (its ARI user must not be
// read_only).
type ARIDialer struct {
	Client *ari.Client
	// App is the application the placed channel enters when answered:
	// kanca's own (the one it subscribes as), so its events reach kanca.
	App string
	// Context is where click-to-call sends the answered call (its
	// Destination is the extension there), e.g. from-internal.
	Context string
}

func (d ARIDialer) Originate(ctx context.Context, p Placement) error {
	o := ari.Originate{ChannelID: p.Channel, Endpoint: p.Endpoint,
		CallerID: p.CallerID, Timeout: p.Timeout}
	if p.Destination != "" {
		o.Context, o.Extension = d.Context, p.Destination
	} else {
		o.App = d.App
	}
	err := d.Client.Originate(ctx, o)
	if errors.Is(err, syscall.ECONNREFUSED) {
		// Nothing listened: Asterisk never had the request.
		return fmt.Errorf("%w: %w", ErrNotAsked, err)
	}
	return err
}

// Play plays a URL as sound:URL (Asterisk's res_http_media_cache fetches
// it), anything else as the sound it names.
func (d ARIDialer) Play(ctx context.Context, channel, media string) error {
	if !strings.HasPrefix(media, "sound:") && !strings.HasPrefix(media, "recording:") {
		media = "sound:" + media
	}
	return d.Client.Play(ctx, channel, media)
}

func (d ARIDialer) Hangup(ctx context.Context, channel string) error {
	return d.Client.Hangup(ctx, channel)
}
