package hookscmd

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/kanca/kanca/cmd/kanca/envdefault"
	"github.com/kanca/kanca/hooks"
)

// envNetPolicy is the hook network policy `kanca run` takes from the same
// environment (its --hook-allow-net and --hook-deny-net default to these),
// so that the admin hears about a refused URL when adding it rather than
// from a dead delivery a day later.
func envNetPolicy() (hooks.NetPolicy, error) {
	p, err := hooks.ParseNetPolicy(envdefault.List("KANCA_HOOK_ALLOW_NET"), envdefault.List("KANCA_HOOK_DENY_NET"))
	if err != nil {
		return hooks.NetPolicy{}, fmt.Errorf("KANCA_HOOK_ALLOW_NET/KANCA_HOOK_DENY_NET: %w", err)
	}
	return p, nil
}

// warnRefused warns, without refusing the hook, when its host resolves into
// a network kanca run would not deliver to: DNS here may differ from DNS
// there, and the policy is enforced at every connection anyway.
func warnRefused(ctx context.Context, w io.Writer, h hooks.Hook) {
	p, err := envNetPolicy()
	if err != nil {
		fmt.Fprintf(w, "warning: %v\n", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for _, err := range p.CheckURL(ctx, net.DefaultResolver, h.URL) {
		fmt.Fprintf(w, "warning: hook %d: %v; kanca run with this KANCA_HOOK_ALLOW_NET/KANCA_HOOK_DENY_NET will not deliver to it\n", h.ID, err)
	}
}
