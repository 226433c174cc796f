// Package netflags is --hook-allow-net and --hook-deny-net, shared by the
// commands that deliver (run, deliver).
package netflags

import (
	"fmt"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/kanca/kanca/cmd/kanca/envdefault"
	"github.com/kanca/kanca/hooks"
)

// Flags say which networks hooks may be delivered to. They are kept
// apart from the rest of run's flags because they are policy, not wiring:
// the same environment variables make `kanca hooks add` warn about a URL
// the daemon would refuse.
type Flags struct {
	Allow, Deny []string
}

// Register adds the flags to fs, with defaults from the environment.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringSliceVar(&f.Allow, "hook-allow-net", envdefault.List("KANCA_HOOK_ALLOW_NET"),
		"deliver hooks only to these networks, CIDR or IP, comma-separated (default: any); checked on the address connected to, after DNS; hooks are then not sent through HTTP(S)_PROXY [KANCA_HOOK_ALLOW_NET]")
	fs.StringSliceVar(&f.Deny, "hook-deny-net", envdefault.List("KANCA_HOOK_DENY_NET"),
		"never deliver hooks to these networks, CIDR or IP, comma-separated, e.g. 127.0.0.0/8,169.254.0.0/16,::1 (wins over --hook-allow-net) [KANCA_HOOK_DENY_NET]")
}

// Policy parses the flags and logs a policy in force, so that refused
// deliveries can be traced to it.
func (f *Flags) Policy(log *slog.Logger) (hooks.NetPolicy, error) {
	p, err := hooks.ParseNetPolicy(f.Allow, f.Deny)
	if err != nil {
		return hooks.NetPolicy{}, fmt.Errorf("--hook-allow-net/--hook-deny-net: %w", err)
	}
	if !p.IsZero() {
		log.Info("hook destinations limited", "policy", p.String())
	}
	return p, nil
}
