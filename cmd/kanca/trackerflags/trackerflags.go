// Package trackerflags holds the flags that `kanca run` and `kanca replay`
// share, so that a replay shows exactly what the daemon would send.
package trackerflags

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cmd/kanca/envdefault"
	"github.com/kanca/kanca/formats"
)

// Flags are the call-reading and body-formatting settings.
type Flags struct {
	CountryCode      int
	TimeZone         string
	Dialplan         string
	NumbersAsStrings bool
	MaxCallDuration  time.Duration

	fs *pflag.FlagSet
}

// Register adds the flags to fs, with defaults from the environment.
func (f *Flags) Register(fs *pflag.FlagSet) {
	f.fs = fs
	fs.IntVar(&f.CountryCode, "country-code", envdefault.Int("KANCA_COUNTRY_CODE", 90),
		"country calling code put before national numbers (0532... -> 90532...); overrides the dialplan file's [KANCA_COUNTRY_CODE]")
	f.RegisterFormat(fs)
	fs.StringVar(&f.Dialplan, "dialplan", os.Getenv("KANCA_DIALPLAN"),
		"YAML file mapping your dialplan's contexts and names (default: reference dialplan and FreePBX names) [KANCA_DIALPLAN]")
	fs.DurationVar(&f.MaxCallDuration, "max-call-duration", 0,
		"end a call still open after this long with an expired CDR (default 12h, or the dialplan file's)")
}

// RegisterFormat adds the body flags alone (--tz, --numbers-as-strings),
// for a command that sends but tracks nothing (deliver).
func (f *Flags) RegisterFormat(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.TimeZone, "tz", os.Getenv("KANCA_TZ"),
		"time zone of the ISO times in CDRs, e.g. Europe/Istanbul (default: this machine's) [KANCA_TZ]")
	fs.BoolVar(&f.NumbersAsStrings, "numbers-as-strings", false,
		"send phone numbers as JSON strings instead of integers")
}

// Tracker builds the tracker's configuration.
func (f *Flags) Tracker() (cdr.Config, error) {
	cfg := cdr.DefaultConfig()
	if f.Dialplan != "" {
		data, err := os.ReadFile(f.Dialplan)
		if err != nil {
			return cdr.Config{}, fmt.Errorf("read dialplan config: %w", err)
		}
		if cfg, err = cdr.ParseConfig(data); err != nil {
			return cdr.Config{}, fmt.Errorf("%s: %w", f.Dialplan, err)
		}
	}
	// A dialplan file's country_code holds unless the flag or its
	// environment variable says otherwise.
	_, fromEnv := os.LookupEnv("KANCA_COUNTRY_CODE")
	if f.Dialplan == "" || fromEnv || (f.fs != nil && f.fs.Changed("country-code")) {
		cfg.CountryCode = f.CountryCode
	}
	if f.MaxCallDuration != 0 {
		cfg.MaxCallDuration = f.MaxCallDuration
	}
	if err := cfg.Validate(); err != nil {
		return cdr.Config{}, err
	}
	return cfg, nil
}

// Format builds the body options every hook starts from.
func (f *Flags) Format() (formats.Options, error) {
	loc := time.Local
	if f.TimeZone != "" {
		l, err := time.LoadLocation(f.TimeZone)
		if err != nil {
			return formats.Options{}, fmt.Errorf("time zone %q: %w (use an IANA name such as Europe/Istanbul)", f.TimeZone, err)
		}
		loc = l
	}
	return formats.Options{Location: loc, NumbersAsStrings: f.NumbersAsStrings}, nil
}
