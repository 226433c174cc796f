package autodial

import (
	"fmt"
	"strings"
)

// Trunk is a dial template and the numbers it carries. Calls up at once
// are bounded per trunk (Runner.Concurrency), a trunk named by its
// template's gateway or endpoint: templates naming the same one share
// its bound.
type Trunk struct {
	// Prefix picks the numbers, in international form without "+"
	// (90532...), the trunk carries; "" carries those no other trunk's
	// prefix picks. The longest matching prefix wins.
	Prefix string
	// Template is the dial string, {number} the number as the trunk
	// dials it: PJSIP/{number}@carrier, sofia/gateway/carrier/{number}.
	Template string
}

// ParseTrunk reads "[PREFIX=]TEMPLATE", PREFIX digits only (a
// FreeSWITCH template may itself hold "{var=value}").
func ParseTrunk(s string) (Trunk, error) {
	t := Trunk{Template: strings.TrimSpace(s)}
	if p, rest, ok := strings.Cut(t.Template, "="); ok && p != "" && strings.Trim(p, "0123456789") == "" {
		t.Prefix, t.Template = p, rest
	}
	if !strings.Contains(t.Template, "{number}") {
		return Trunk{}, fmt.Errorf("%q: the template needs {number}", s)
	}
	return t, nil
}

// Name is the trunk the template dials through: the PJSIP/SIP/IAX2
// endpoint after "@" or the channel driver's peer
// (PJSIP/{number}@carrier, SIP/carrier/{number}), the sofia gateway
// (sofia/gateway/carrier/{number}); otherwise the template itself.
func (t Trunk) Name() string {
	tpl := t.Template
	if i := strings.LastIndex(tpl, "}"); i >= 0 && strings.HasPrefix(tpl, "{") && !strings.HasPrefix(tpl, "{number}") {
		// FreeSWITCH's {var=value} block before the endpoint.
		tpl = tpl[strings.Index(tpl, "}")+1:]
	}
	if _, gw, ok := strings.Cut(tpl, "/gateway/"); ok {
		name, _, _ := strings.Cut(gw, "/")
		return name
	}
	if _, peer, ok := strings.Cut(tpl, "@"); ok && peer != "" && !strings.Contains(peer, "{") {
		return peer
	}
	if parts := strings.Split(tpl, "/"); len(parts) == 3 && parts[2] == "{number}" {
		return parts[1]
	}
	return t.Template
}

// Endpoint is the template with number filled in.
func (t Trunk) Endpoint(number string) string {
	return strings.ReplaceAll(t.Template, "{number}", number)
}

// CheckTrunks says what is wrong with a set of trunks: one must carry
// the numbers no prefix picks, and no prefix may be given twice.
func CheckTrunks(trunks []Trunk) error {
	seen := map[string]bool{}
	for _, t := range trunks {
		if seen[t.Prefix] {
			if t.Prefix == "" {
				return fmt.Errorf("two templates without a prefix: only one carries the numbers no prefix picks")
			}
			return fmt.Errorf("prefix %s given twice", t.Prefix)
		}
		seen[t.Prefix] = true
	}
	if !seen[""] {
		return fmt.Errorf("no template without a prefix: one must carry the numbers no prefix picks")
	}
	return nil
}

// route is the trunk carrying number: the longest matching prefix, else
// the one without.
func route(trunks []Trunk, number string) Trunk {
	var best Trunk
	found := false
	for _, t := range trunks {
		if strings.HasPrefix(number, t.Prefix) && (!found || len(t.Prefix) > len(best.Prefix)) {
			best, found = t, true
		}
	}
	return best
}
