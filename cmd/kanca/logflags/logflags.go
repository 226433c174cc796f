// Package logflags holds the logging flags of the long-running commands.
package logflags

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kanca/kanca/cmd/kanca/envdefault"
)

// Flags choose the log format and level.
type Flags struct {
	Format string
	Level  string
}

// Register adds --log-format and --log-level.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Format, "log-format", envdefault.String("KANCA_LOG_FORMAT", "text"), "log format: text or json [KANCA_LOG_FORMAT]")
	fs.StringVar(&f.Level, "log-level", envdefault.String("KANCA_LOG_LEVEL", "info"), "log level: debug, info, warn or error [KANCA_LOG_LEVEL]")
}

// Logger builds the logger the flags describe, writing to w.
func (f *Flags) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.Level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", f.Level)
	}
	o := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(f.Format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", f.Format)
}
