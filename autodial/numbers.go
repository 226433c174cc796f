package autodial

import (
	"fmt"
	"strings"
)

// Numbers turns what callers write into international digits and back
// into what the trunk dials.
type Numbers struct {
	Country string // the PBX's country code, e.g. 90
	// Premium are international prefixes of premium-rate numbers, refused
	// unless a key allows them.
	Premium []string
}

// DefaultPremium are Turkey's premium-rate ranges (0900, 0898).
var DefaultPremium = []string{"90900", "90898"}

// Parse reads one number: +90 532..., 0090532..., 0532..., or 532...
// (national, without the trunk prefix, as Alertalk takes them).
func (n Numbers) Parse(s string) (string, error) {
	raw := s
	s = strings.TrimSpace(s)
	plus := strings.HasPrefix(s, "+")
	s = strings.TrimPrefix(s, "+")
	d := strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return r
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
			return -1
		}
		return 'x'
	}, s)
	if d == "" || strings.Contains(d, "x") {
		return "", fmt.Errorf("%q is not a phone number", raw)
	}
	switch {
	case plus:
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	case strings.HasPrefix(d, "0"):
		d = n.Country + d[1:]
	case !strings.HasPrefix(d, n.Country) || len(d) <= 10:
		d = n.Country + d
	}
	if len(d) < 8 || len(d) > 15 {
		return "", fmt.Errorf("%q: %d digits, not a phone number", raw, len(d))
	}
	return d, nil
}

// ParseList reads a comma-separated list, dropping repeats.
func (n Numbers) ParseList(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		d, err := n.Parse(part)
		if err != nil {
			return nil, err
		}
		if !contains(out, d) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no number in %q", s)
	}
	return out, nil
}

// Dial is the number as the trunk dials it: national with the trunk
// prefix at home (0532...), 00 and the country code abroad.
func (n Numbers) Dial(intl string) string {
	if rest, ok := strings.CutPrefix(intl, n.Country); ok {
		return "0" + rest
	}
	return "00" + intl
}

// mayCall checks a number against the key's prefixes and the premium
// ranges. The key's prefixes are international digits: a key allowed
// "90" calls anywhere at home; another country needs its own prefix.
func (k Key) mayCall(intl string, premium []string) error {
	allowed := false
	for _, p := range k.Allow {
		if strings.HasPrefix(intl, p) {
			allowed = true
			break
		}
	}
	if !allowed {
		return fmt.Errorf("%s: this key may call only numbers starting %s", intl, strings.Join(k.Allow, ", "))
	}
	if !k.AllowPremium {
		for _, p := range premium {
			if strings.HasPrefix(intl, p) {
				return fmt.Errorf("%s is a premium-rate number; this key may not call it", intl)
			}
		}
	}
	return nil
}
