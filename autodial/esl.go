package autodial

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/kanca/kanca/esl"
)

// ESLDialer places calls through FreeSWITCH's event socket, on the
// connection kanca follows FreeSWITCH with (its event_socket ACL must let
// it run originate). The command shapes are mod_commands' own:
//
//	bgapi originate {origination_uuid=ID,origination_caller_id_number=N,originate_timeout=T}ENDPOINT &park()
//	bgapi originate {...}ENDPOINT DEST XML CONTEXT      (click-to-call)
//	api uuid_broadcast ID playback::MEDIA aleg
//	api uuid_kill ID
//
// origination_uuid gives the channel the id kanca announced to the
// tracker; &park() holds the answered call for kanca's commands.
type ESLDialer struct {
	Conn interface {
		API(ctx context.Context, cmd string) (string, error)
		BgAPI(ctx context.Context, cmd string) (string, error)
	}
	Context string // where click-to-call sends the answered call
}

// OriginateCommand is the originate p becomes.
func (d ESLDialer) OriginateCommand(p Placement) string {
	vars := fmt.Sprintf("{origination_uuid=%s,origination_caller_id_number=%s,originate_timeout=%d,ignore_early_media=true}",
		p.Channel, p.CallerID, int(p.Timeout.Seconds()))
	ep := p.Endpoint
	if p.Destination != "" {
		return "originate " + vars + ep + " " + p.Destination + " XML " + d.Context
	}
	return "originate " + vars + ep + " &park()"
}

func (d ESLDialer) Originate(ctx context.Context, p Placement) error {
	for _, v := range []string{p.Channel, p.CallerID, p.Dial, p.Destination} {
		if strings.ContainsAny(v, " ,{}'\n") {
			return fmt.Errorf("originate: %q cannot go into a FreeSWITCH command", v)
		}
	}
	_, err := d.Conn.BgAPI(ctx, d.OriginateCommand(p))
	if errors.Is(err, esl.ErrNotConnected) {
		return fmt.Errorf("%w: %w", ErrNotAsked, err)
	}
	return err
}

// Play plays a URL through mod_http_cache (http_cache://), anything else
// as the file or sound it names.
func (d ESLDialer) Play(ctx context.Context, channel, media string) error {
	if strings.HasPrefix(media, "http://") || strings.HasPrefix(media, "https://") {
		media = "http_cache://" + media
	}
	return d.api(ctx, "uuid_broadcast "+channel+" playback::"+media+" aleg")
}

func (d ESLDialer) Hangup(ctx context.Context, channel string) error {
	err := d.api(ctx, "uuid_kill "+channel)
	if err != nil && strings.Contains(err.Error(), "No such channel") {
		return nil
	}
	return err
}

// api runs cmd and turns FreeSWITCH's "-ERR ..." answer into an error.
func (d ESLDialer) api(ctx context.Context, cmd string) error {
	out, err := d.Conn.API(ctx, cmd)
	if err != nil {
		return err
	}
	if strings.HasPrefix(out, "-ERR") {
		return fmt.Errorf("%s: %s", strings.Fields(cmd)[0], strings.TrimSpace(out))
	}
	return nil
}
