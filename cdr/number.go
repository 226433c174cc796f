package cdr

import (
	"strconv"
	"strings"

	"github.com/nyaruka/phonenumbers"
)

// numbers turns what a PBX shows as a number into the form Bulutfon sends:
// international digits without '+', extensions as dialled.
type numbers struct {
	countryCode int
	region      string // the ITU region of countryCode, for national numbers
	extMax      int    // numbers of at most this many digits are extensions
}

func newNumbers(countryCode, extMax int) numbers {
	return numbers{
		countryCode: countryCode,
		region:      phonenumbers.GetRegionCodeForCountryCode(countryCode),
		extMax:      extMax,
	}
}

// digits strips the punctuation people and carriers put in numbers. ok is
// false when something else than a number is left (an anonymous caller, a
// SIP URI, a queue name).
func digits(s string) (d string, plus bool, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false, false
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			plus = true
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')':
		default:
			return s, false, false
		}
	}
	if b.Len() == 0 {
		return s, false, false
	}
	return b.String(), plus, true
}

// isExtension says whether s has the shape of an internal extension.
func (n numbers) isExtension(s string) bool {
	d, plus, ok := digits(s)
	return ok && !plus && len(d) <= n.extMax
}

// isOutside says whether s has the shape of a number outside the PBX.
func (n numbers) isOutside(s string) bool {
	d, plus, ok := digits(s)
	return ok && (plus || len(d) > n.extMax)
}

// normalize returns s in international form when it is an outside number,
// as dialled when it is an extension, and unchanged when it is no number.
func (n numbers) normalize(s string) string {
	d, plus, ok := digits(s)
	if !ok {
		return strings.TrimSpace(s)
	}
	if !plus && len(d) <= n.extMax {
		return d
	}
	in := d
	if plus {
		in = "+" + d
	}
	if p, err := phonenumbers.Parse(in, n.region); err == nil && p.GetCountryCode() != 0 {
		return phonenumbers.Format(p, phonenumbers.E164)[1:]
	}
	return n.fallback(d, plus)
}

// fallback covers what the numbering plan library rejects (too short or
// too long for its metadata): the usual European dialling rules.
func (n numbers) fallback(d string, plus bool) string {
	cc := strconv.Itoa(n.countryCode)
	switch {
	case plus:
		return d
	case strings.HasPrefix(d, "00"):
		return d[2:]
	case strings.HasPrefix(d, "0"):
		return cc + d[1:]
	case strings.HasPrefix(d, cc):
		return d
	default:
		return cc + d
	}
}
