// Package eslflags holds the flags that say how to reach FreeSWITCH's
// event socket, shared by the commands that connect to it (run, doctor).
package eslflags

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kanca/kanca/cmd/kanca/envdefault"
	"github.com/kanca/kanca/esl"
)

// Flags are the event socket's address and password file. The password
// itself comes from KANCA_ESL_PASSWORD or the file, never from the command
// line.
type Flags struct {
	Addr, PasswordFile string
}

// Register adds --esl-addr and --esl-password-file.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Addr, "esl-addr", envdefault.String("KANCA_ESL_ADDR", esl.DefaultAddr), "FreeSWITCH event socket, host:port (event_socket.conf.xml listen-ip, listen-port) [KANCA_ESL_ADDR]")
	fs.StringVar(&f.PasswordFile, "esl-password-file", os.Getenv("KANCA_ESL_PASSWORD_FILE"), "file holding the event socket password (else KANCA_ESL_PASSWORD) [KANCA_ESL_PASSWORD_FILE]")
}

// Config returns the esl.Config the flags describe, with the password read
// from --esl-password-file or KANCA_ESL_PASSWORD.
func (f *Flags) Config(log *slog.Logger) (esl.Config, error) {
	password := os.Getenv("KANCA_ESL_PASSWORD")
	if f.PasswordFile != "" {
		b, err := os.ReadFile(f.PasswordFile)
		if err != nil {
			return esl.Config{}, fmt.Errorf("read event socket password: %w", err)
		}
		password = strings.TrimSpace(string(b))
	}
	if password == "" && log != nil {
		log.Warn("no event socket password: KANCA_ESL_PASSWORD is not set and no --esl-password-file given")
	}
	return esl.Config{Addr: f.Addr, Password: password, Logger: log}, nil
}
