// Package pbxflags holds --pbx, which PBX kanca attaches to, with the
// flags of each (ariflags, eslflags), for the commands that connect to one
// (run, doctor).
package pbxflags

import (
	"fmt"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kanca/kanca/cmd/kanca/ariflags"
	"github.com/kanca/kanca/cmd/kanca/envdefault"
	"github.com/kanca/kanca/cmd/kanca/eslflags"
)

// The PBXs --pbx names.
const (
	Asterisk   = "asterisk"
	FreeSWITCH = "freeswitch"
)

// Flags are --pbx and the connection flags of both PBXs.
type Flags struct {
	PBX string
	ARI ariflags.Flags
	ESL eslflags.Flags
}

// Register adds --pbx, the --ari-* flags and the --esl-* flags.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.PBX, "pbx", envdefault.String("KANCA_PBX", Asterisk), "the PBX to attach to: asterisk (ARI, the --ari-* flags) or freeswitch (its event socket, the --esl-* flags) [KANCA_PBX]")
	f.ARI.Register(fs)
	f.ESL.Register(fs)
}

// Check refuses a --pbx kanca does not know; a name as its makers write
// it (FreeSWITCH, Asterisk) is the same PBX.
func (f *Flags) Check() error {
	switch p := strings.ToLower(strings.TrimSpace(f.PBX)); p {
	case Asterisk, FreeSWITCH:
		f.PBX = p
		return nil
	}
	return fmt.Errorf("--pbx %q (or KANCA_PBX): want %s or %s", f.PBX, Asterisk, FreeSWITCH)
}
