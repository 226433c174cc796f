// Package pbxflags holds --pbx, which PBX kanca attaches to, with the
// flags of each (ariflags, eslflags), for the commands that connect to one
// (run, doctor).
package pbxflags

import (
	"fmt"

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

// Check refuses a --pbx kanca does not know.
func (f *Flags) Check() error {
	switch f.PBX {
	case Asterisk, FreeSWITCH:
		return nil
	}
	return fmt.Errorf("--pbx %q: want %s or %s", f.PBX, Asterisk, FreeSWITCH)
}
