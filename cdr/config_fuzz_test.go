package cdr

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// FuzzConfig feeds dialplan files to ParseConfig. What it accepts is a
// valid Config that survives being written back as YAML and read again;
// what it refuses gets a one-line error.
func FuzzConfig(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "examples", "dialplan.yaml.example")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"country_code: 49\ncontexts:\n  inbound: [carrier-in]\nnames:\n  sales: \"600\"\nmax_call_duration: 2h\n",
		"contexts: {menu: ['[']}",
		"names: {sales: abc}",
		"countrycode: 49",
		"extension_max_digits: 40",
		"max_call_duration: soon",
		"trunks: []\nnames: {}\ndid_variables: [FROM_DID]\n",
		"---\ncountry_code: 1\n---\ncountry_code: 2\n",
		"contexts:\n  inbound: [\"from-trunk*\", 'ext-did-\\\\*']\n  fax: [ext-fax*]\n",
		"names:\n  ivr-main: \"10\"\n  \"\": \"+90 532 000 00 00\"\n",
		"x: &a [*a, *a]\n",
		"country_code: 0x5A\nextension_max_digits: 0o7\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig(data)
		if err != nil {
			if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("not a one-line error: %q", msg)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted an invalid config: %v", err)
		}
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal accepted config: %v", err)
		}
		back, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("written back, the config is refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(emptyAsNil(c), emptyAsNil(back)) {
			t.Fatalf("round trip changed the config:\n%#v\n%#v\n%s", c, back, out)
		}
		// The patterns are used on every channel: none may panic there.
		for _, l := range [][]string{c.Contexts.Inbound, c.Contexts.Menu, c.Trunks} {
			matchAny(l, "from-trunk")
			matchAny(l, string(data))
		}
		NewTracker(c)
	})
}

// emptyAsNil equates an empty list with none: YAML writes both as [].
func emptyAsNil(c Config) Config {
	for _, l := range []*[]string{&c.Contexts.Inbound, &c.Contexts.Internal, &c.Contexts.Menu, &c.Contexts.Group,
		&c.Contexts.Queue, &c.Contexts.Fax, &c.Trunks, &c.DIDVariables} {
		if len(*l) == 0 {
			*l = nil
		}
	}
	if len(c.Names) == 0 {
		c.Names = nil
	}
	return c
}
