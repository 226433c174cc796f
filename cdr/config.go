package cdr

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Config tells the tracker how to read a dialplan. The zero value is not
// useful; start from DefaultConfig, which knows the reference dialplan and
// stock FreePBX context names.
type Config struct {
	// CountryCode is prefixed to national numbers (0532... -> 90532...).
	CountryCode int `yaml:"country_code"`
	// ExtensionMaxDigits: numbers of at most this many digits are
	// extensions; longer ones are outside numbers.
	ExtensionMaxDigits int `yaml:"extension_max_digits"`
	// MaxCallDuration ends (with an expired CDR) a call still open after it,
	// so that a lost hangup cannot hold memory forever.
	MaxCallDuration time.Duration `yaml:"max_call_duration"`

	// Contexts classify dialplan contexts; each entry is a name or a
	// shell pattern (ivr-*).
	Contexts Contexts `yaml:"contexts"`

	// Trunks are endpoint names that lead outside (PJSIP/<trunk>/..., X@<trunk>).
	Trunks []string `yaml:"trunks"`

	// Names gives a number to a menu, group or queue known by name
	// (queue "sales" -> 600, context "ivr-main" -> 10).
	Names map[string]string `yaml:"names"`

	// DIDVariables carry the dialled public number when the inbound
	// channel's extension does not (an "s" extension).
	DIDVariables []string `yaml:"did_variables"`
}

// Contexts groups dialplan context patterns by what they mean.
type Contexts struct {
	Inbound  []string `yaml:"inbound"`  // calls from outside start here
	Internal []string `yaml:"internal"` // extensions' own calls start here
	Menu     []string `yaml:"menu"`     // IVR menus
	Group    []string `yaml:"group"`    // ring groups: the extension is the group number
	Queue    []string `yaml:"queue"`    // queues: the extension is the queue number
	Fax      []string `yaml:"fax"`      // fax reception
}

// DefaultConfig knows the reference dialplan shipped with kanca and stock
// FreePBX context names.
func DefaultConfig() Config {
	return Config{
		CountryCode:        90,
		ExtensionMaxDigits: 6,
		MaxCallDuration:    12 * time.Hour,
		Contexts: Contexts{
			Inbound:  []string{"from-trunk*", "from-pstn*", "from-external*", "from-carrier*", "from-provider*", "ext-did*", "inbound*", "incoming*", "public"},
			Internal: []string{"from-internal*", "from-users*", "from-phones*", "from-extensions*", "internal*", "default"},
			Menu:     []string{"ivr-*", "ivr_*", "ivr", "*-ivr", "*_ivr", "menu*"},
			Group:    []string{"ext-group*", "ringgroup*", "ring-group*", "ringgroups*"},
			Queue:    []string{"ext-queues*", "queues*"},
			Fax:      []string{"ext-fax*", "fax*"},
		},
		DIDVariables: []string{"FROM_DID", "DID", "__FROM_DID", "__DID", "DNID"},
	}
}

// dialplanFile is the YAML layout of a dialplan config; its type name shows
// in no message (see yamlError).
type dialplanFile struct {
	CountryCode        *int              `yaml:"country_code"`
	ExtensionMaxDigits *int              `yaml:"extension_max_digits"`
	MaxCallDuration    string            `yaml:"max_call_duration"`
	Contexts           Contexts          `yaml:"contexts"`
	Trunks             []string          `yaml:"trunks"`
	Names              map[string]string `yaml:"names"`
	DIDVariables       []string          `yaml:"did_variables"`
}

// ParseConfig reads a YAML dialplan mapping on top of DefaultConfig: the
// lists it gives replace the defaults, what it leaves out keeps them. The
// error is one line.
func ParseConfig(data []byte) (Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var raw dialplanFile
	if err := dec.Decode(&raw); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("parse dialplan config: %s", yamlError(err))
	}
	// A second document would be silently ignored: more likely a pasting
	// accident than something meant.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, errors.New("parse dialplan config: more than one YAML document (a '---' line); want one mapping")
	}
	if raw.CountryCode != nil {
		c.CountryCode = *raw.CountryCode
	}
	if raw.ExtensionMaxDigits != nil {
		c.ExtensionMaxDigits = *raw.ExtensionMaxDigits
	}
	if raw.MaxCallDuration != "" {
		d, err := time.ParseDuration(raw.MaxCallDuration)
		if err != nil {
			return Config{}, fmt.Errorf("parse dialplan config: max_call_duration: %w", err)
		}
		c.MaxCallDuration = d
	}
	for _, p := range []struct {
		dst *[]string
		src []string
	}{
		{&c.Contexts.Inbound, raw.Contexts.Inbound}, {&c.Contexts.Internal, raw.Contexts.Internal},
		{&c.Contexts.Menu, raw.Contexts.Menu}, {&c.Contexts.Group, raw.Contexts.Group},
		{&c.Contexts.Queue, raw.Contexts.Queue}, {&c.Contexts.Fax, raw.Contexts.Fax},
		{&c.Trunks, raw.Trunks}, {&c.DIDVariables, raw.DIDVariables},
	} {
		if p.src != nil {
			*p.dst = p.src
		}
	}
	if raw.Names != nil {
		c.Names = raw.Names
	}
	return c, c.Validate()
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.CountryCode < 1 || c.CountryCode > 999 {
		return fmt.Errorf("country code %d: want 1 to 999", c.CountryCode)
	}
	if c.ExtensionMaxDigits < 1 || c.ExtensionMaxDigits > 15 {
		return fmt.Errorf("extension_max_digits %d: want 1 to 15", c.ExtensionMaxDigits)
	}
	if c.MaxCallDuration < time.Minute {
		return fmt.Errorf("max_call_duration %s: want at least 1m", c.MaxCallDuration)
	}
	for _, list := range [][]string{c.Contexts.Inbound, c.Contexts.Internal, c.Contexts.Menu, c.Contexts.Group, c.Contexts.Queue, c.Contexts.Fax, c.Trunks} {
		for _, p := range list {
			if !isName(p) {
				return fmt.Errorf("pattern %q: want a context or endpoint name, without spaces", p)
			}
			if _, err := path.Match(p, ""); err != nil {
				return fmt.Errorf("pattern %q: %w", p, err)
			}
		}
	}
	for _, v := range c.DIDVariables {
		if !isName(v) {
			return fmt.Errorf("did_variables: %q: want a channel variable name, without spaces", v)
		}
	}
	for name, num := range c.Names {
		if name == "" || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
			return fmt.Errorf("names: %q: want a menu, group or queue name", name)
		}
		if _, _, ok := digits(num); !ok {
			return fmt.Errorf("names: %q maps to %q, which is not a number", name, num)
		}
	}
	return nil
}

// isName holds for what Asterisk can name a context, endpoint, queue or
// variable: a word without spaces or control characters. Anything else in
// the file is a typo that would never match.
func isName(s string) bool {
	return s != "" && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	})
}

var (
	unknownField = regexp.MustCompile(`field (.*) not found in type [\w.]+$`)
	wrongType    = regexp.MustCompile(`cannot unmarshal (!!\w+)(?: (.*))? into (.+)$`)
)

// yamlError turns the decoder's error, which names Go types and may span
// lines, into one line in the file's own terms.
func yamlError(err error) string {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "yaml: ")), " ")
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if g := unknownField.FindStringSubmatch(m); g != nil {
			m = m[:len(m)-len(g[0])] + fmt.Sprintf("unknown key %q", g[1])
		} else if g := wrongType.FindStringSubmatch(m); g != nil {
			got := g[1]
			if g[2] != "" {
				got += " " + g[2]
			}
			m = m[:len(m)-len(g[0])] + fmt.Sprintf("got %s, want %s", got, wantOf(g[3]))
		}
		msgs[i] = strings.Join(strings.Fields(m), " ")
	}
	return strings.Join(msgs, "; ")
}

func wantOf(goType string) string {
	switch goType {
	case "cdr.dialplanFile":
		return "a mapping of country_code, extension_max_digits, max_call_duration, contexts, trunks, names, did_variables"
	case "cdr.Contexts":
		return "a mapping of inbound, internal, menu, group, queue, fax"
	case "map[string]string":
		return "a mapping of names to numbers"
	case "[]string":
		return "a list"
	case "int":
		return "a whole number"
	case "string":
		return "a single value"
	}
	return goType
}

func matchAny(patterns []string, s string) bool {
	if s == "" {
		return false
	}
	s = strings.ToLower(s)
	for _, p := range patterns {
		if ok, _ := path.Match(strings.ToLower(p), s); ok {
			return true
		}
	}
	return false
}
