package cdr

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A mistake in the dialplan file is reported on one line, in the file's
// terms: its line, its key, what was wanted; never a Go type.
func TestParseConfigErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"country_code: abc\nfoo: 1\n", `line 1: got !!str ` + "`abc`" + `, want a whole number; line 2: unknown key "foo"`},
		{"contexts:\n  inbound: x\n  bar: [1]\n", `line 2: got !!str ` + "`x`" + `, want a list; line 3: unknown key "bar"`},
		{"names: [a]\n", "line 1: got !!seq, want a mapping of names to numbers"},
		{"- 1\n", "line 1: got !!seq, want a mapping of country_code, extension_max_digits"},
		{"root:x:0:0:root:/root:/bin/bash\n", "want a mapping of country_code"},
		{"contexts:\n  menu: {a: b}\n", "line 2: got !!map, want a list"},
		{"a: [\n", "line 1: did not find expected node content"},
		{"country_code: 49\n---\ncountry_code: 1\n", "more than one YAML document"},
		{"max_call_duration: 5\n", `max_call_duration: time: missing unit in duration "5"`},
		{"names: {sales: abc}\n", `names: "sales" maps to "abc", which is not a number`},
		{"country_code: 0\n", "country code 0: want 1 to 999"},
	} {
		_, err := ParseConfig([]byte(c.yaml))
		require.Error(t, err, c.yaml)
		assert.Contains(t, err.Error(), c.want, c.yaml)
		assert.NotContains(t, err.Error(), "\n", c.yaml)
		assert.NotContains(t, err.Error(), "dialplanFile", c.yaml)
		assert.NotContains(t, err.Error(), "struct {", c.yaml)
	}
}

func TestParseConfigAcceptsOneDocumentMarker(t *testing.T) {
	c, err := ParseConfig([]byte("---\ncountry_code: 49\n"))
	require.NoError(t, err)
	assert.Equal(t, 49, c.CountryCode)
	_, err = ParseConfig([]byte(strings.Repeat("# only comments\n", 3)))
	require.NoError(t, err)
}
