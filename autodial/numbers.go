package autodial

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// Numbers turns what callers write into international digits and back
// into what the trunk dials.
type Numbers struct {
	Country string // the PBX's country code, e.g. 90
	// Premium are international prefixes of premium-rate numbers, refused
	// unless a key allows them.
	Premium []string
}

// DefaultPremium are Turkey's premium-rate ranges (0900, 0898), refused
// beside every number the numbering plan has as premium-rate, in any
// country.
var DefaultPremium = []string{"90900", "90898"}

// Parse reads one number: +90 532..., 0090532..., 0532..., 532...
// (national, without the trunk prefix, as Alertalk takes them) or
// 90532.... A number without + or 00 is read as the PBX country's, and
// every number must be one the numbering plan knows (libphonenumber's
// metadata): a number abroad written without its + is refused, not called
// as a number at home.
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
	region := phonenumbers.GetRegionCodeForCountryCode(atoi(n.Country))
	in := d
	switch {
	case plus:
		in = "+" + d
	case strings.HasPrefix(d, "00"):
		in = "+" + d[2:]
	}
	p, err := phonenumbers.Parse(in, region)
	if err != nil || !phonenumbers.IsValidNumber(p) {
		if plus || strings.HasPrefix(d, "00") {
			return "", fmt.Errorf("%q is not a valid phone number", raw)
		}
		return "", fmt.Errorf("%q is not a valid number in %s; write a number abroad with its + or 00", raw, region)
	}
	return phonenumbers.Format(p, phonenumbers.E164)[1:], nil
}

// premiumRate says whether the numbering plan has intl, international
// digits, as a premium-rate number.
func premiumRate(intl string) bool {
	p, err := phonenumbers.Parse("+"+intl, "")
	return err == nil && phonenumbers.GetNumberType(p) == phonenumbers.PREMIUM_RATE
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
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
		premiumRange := premiumRate(intl)
		for _, p := range premium {
			premiumRange = premiumRange || strings.HasPrefix(intl, p)
		}
		if premiumRange {
			return fmt.Errorf("%s is a premium-rate number; this key may not call it", intl)
		}
	}
	return nil
}
