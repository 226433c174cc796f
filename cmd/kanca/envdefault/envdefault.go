// Package envdefault gives flags their defaults from KANCA_* environment
// variables, so that a systemd environment file and the command line say
// the same things.
package envdefault

import (
	"os"
	"strconv"
	"strings"
)

// String is the variable's value, or def when it is unset or empty.
func String(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Int is the variable's value as an integer, or def when it is unset or
// not a number (the flag's own validation then reports the default's use).
func Int(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// List is the variable's value split at commas, blanks dropped: nil when
// it is unset or empty.
func List(name string) []string {
	var out []string
	for _, s := range strings.Split(os.Getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
