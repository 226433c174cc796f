package hooks

import (
	"context"
	"fmt"
	"strings"

	"github.com/kanca/kanca/cdr"
)

// CallbackPrefix marks a hook that stands for a callback URL given with a
// call request (cdr.Autodial.CallbackURL) rather than for a PBX number:
// its Number is CallbackPrefix + URL. It is delivered to, retried and
// listed like any hook, and receives only the calls that name its URL.
const CallbackPrefix = "callback:"

// callbackOf is the hook number ev's request asked its events sent to, ""
// for none.
func callbackOf(ev cdr.Event) string {
	if ev.Autodial == nil || ev.Autodial.CallbackURL == nil {
		return ""
	}
	return CallbackPrefix + *ev.Autodial.CallbackURL
}

// CallbackHook returns the hook standing for a request's callback URL,
// adding it (JSON, every event) the first time the URL is given.
func (s *Store) CallbackHook(ctx context.Context, url string) (Hook, error) {
	number := CallbackPrefix + url
	hs, err := s.queryHooks(ctx, "SELECT "+hookColumns+" FROM hooks WHERE number = ? ORDER BY id LIMIT 1", number)
	if err != nil {
		return Hook{}, fmt.Errorf("callback hook: %w", err)
	}
	if len(hs) > 0 {
		return hs[0], nil
	}
	return s.AddHook(ctx, Hook{Number: number, URL: url})
}

// validNumber says whether a hook may be bound to number: a PBX number
// (digits), or its own URL as a callback.
func validNumber(number, url string) bool {
	if rest, ok := strings.CutPrefix(number, CallbackPrefix); ok {
		return rest == url
	}
	return digits(number)
}
