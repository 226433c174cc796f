// Package ariflags holds the flags that say how to reach Asterisk's ARI,
// shared by the commands that connect to it (run, doctor).
package ariflags

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cmd/kanca/envdefault"
)

// Flags are the ARI address, user, application and password file. The
// password itself comes from KANCA_ARI_PASSWORD or the file, never from
// the command line.
type Flags struct {
	URL, User, App, PasswordFile string
}

// Register adds --ari-url, --ari-user, --ari-app and --ari-password-file.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.URL, "ari-url", envdefault.String("KANCA_ARI_URL", "http://127.0.0.1:8088"), "Asterisk HTTP server with ARI [KANCA_ARI_URL]")
	// The default comes from the environment and is printed by --help: a
	// password put in the URL by mistake must not be (kanca refuses it).
	if u, err := url.Parse(f.URL); err != nil || u.User != nil || strings.Contains(f.URL, "@") {
		fs.Lookup("ari-url").DefValue = "(KANCA_ARI_URL, not shown: it does not parse or carries credentials)"
	}
	fs.StringVar(&f.User, "ari-user", os.Getenv("KANCA_ARI_USER"), "ari.conf user [KANCA_ARI_USER]")
	fs.StringVar(&f.App, "ari-app", envdefault.String("KANCA_ARI_APP", "kanca"), "ARI application name kanca subscribes as [KANCA_ARI_APP]")
	fs.StringVar(&f.PasswordFile, "ari-password-file", os.Getenv("KANCA_ARI_PASSWORD_FILE"), "file holding the ARI password (else KANCA_ARI_PASSWORD) [KANCA_ARI_PASSWORD_FILE]")
}

// Config returns the ari.Config the flags describe, with the password read
// from --ari-password-file or KANCA_ARI_PASSWORD.
func (f *Flags) Config(log *slog.Logger) (ari.Config, error) {
	if f.User == "" {
		return ari.Config{}, errors.New("no ARI user: set --ari-user or KANCA_ARI_USER to the ari.conf user kanca logs in as")
	}
	password := os.Getenv("KANCA_ARI_PASSWORD")
	if f.PasswordFile != "" {
		b, err := os.ReadFile(f.PasswordFile)
		if err != nil {
			return ari.Config{}, fmt.Errorf("read ARI password: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	if password == "" && log != nil {
		// Said at start: otherwise the first sign is Asterisk's 401, one
		// reconnect later.
		log.Warn("no ARI password: KANCA_ARI_PASSWORD is not set and no --ari-password-file given; Asterisk will refuse an ari.conf user with a password")
	}
	return ari.Config{URL: f.URL, User: f.User, Password: password, App: f.App, Logger: log}, nil
}
