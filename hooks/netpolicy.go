package hooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrRefusedDestination is wrapped by every refusal of a NetPolicy.
var ErrRefusedDestination = errors.New("destination refused by the hook network policy")

// NetPolicy limits the networks hooks are delivered to, so that whoever can
// add a hook cannot aim kanca at the machines beside it (a metadata
// service, an admin interface on loopback). It judges the address actually
// dialled, after DNS: a name that resolves to an allowed address when the
// hook is added and to a denied one later (DNS rebinding) is still refused.
// The zero value allows everything.
type NetPolicy struct {
	// Allow, when not empty, is the only networks hooks may reach.
	Allow []netip.Prefix
	// Deny is refused even inside Allow.
	Deny []netip.Prefix
}

// ParseNetPolicy reads allow and deny lists of CIDR prefixes (10.0.0.0/8,
// fd00::/8) or single addresses. The error names the entry at fault.
func ParseNetPolicy(allow, deny []string) (NetPolicy, error) {
	var p NetPolicy
	var err error
	if p.Allow, err = parsePrefixes("allow", allow); err != nil {
		return NetPolicy{}, err
	}
	if p.Deny, err = parsePrefixes("deny", deny); err != nil {
		return NetPolicy{}, err
	}
	return p, nil
}

func parsePrefixes(list string, in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("hook network %s list: %q is not a CIDR prefix (10.0.0.0/8) or an IP address", list, s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// IsZero reports a policy that allows everything.
func (p NetPolicy) IsZero() bool { return len(p.Allow) == 0 && len(p.Deny) == 0 }

// String describes the policy for logs.
func (p NetPolicy) String() string {
	if p.IsZero() {
		return "any destination"
	}
	var parts []string
	if len(p.Allow) > 0 {
		parts = append(parts, "allow "+joinPrefixes(p.Allow))
	}
	if len(p.Deny) > 0 {
		parts = append(parts, "deny "+joinPrefixes(p.Deny))
	}
	return strings.Join(parts, "; ")
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Check says whether ip may be dialled; the error wraps
// ErrRefusedDestination and names the network that decided.
func (p NetPolicy) Check(ip netip.Addr) error {
	// An IPv4 address reached as ::ffff:a.b.c.d, or a link-local one with
	// a zone, is still that address: neither form may slip past a prefix.
	ip = ip.Unmap().WithZone("")
	for _, n := range p.Deny {
		if n.Contains(ip) {
			return fmt.Errorf("%w: %s is in denied network %s", ErrRefusedDestination, ip, n)
		}
	}
	if len(p.Allow) == 0 {
		return nil
	}
	for _, n := range p.Allow {
		if n.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is outside the allowed networks %s", ErrRefusedDestination, ip, joinPrefixes(p.Allow))
}

// control is a net.Dialer Control: it runs for every address the dialer
// tries, after resolution and before connecting.
func (p NetPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot read dialled address %q: %v", ErrRefusedDestination, address, err)
	}
	return p.Check(ap.Addr())
}

// CheckURL resolves the host of a hook URL as the dispatcher would and
// returns one refusal per address the policy refuses. It is advice for the
// admin adding a hook; the dispatcher checks again at every connection.
// A host that does not resolve here is not reported: it may resolve where
// kanca runs.
func (p NetPolicy) CheckURL(ctx context.Context, r *net.Resolver, rawURL string) []error {
	if p.IsZero() {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Hostname() == "" {
		return nil
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(u.Hostname()); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = r.LookupNetIP(ctx, "ip", u.Hostname()); err != nil {
		return nil
	}
	var errs []error
	for _, a := range addrs {
		if err := p.Check(a); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.Hostname(), err))
		}
	}
	return errs
}
