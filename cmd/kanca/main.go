// Command kanca attaches to a PBX and turns every call's lifecycle into
// Bulutfon-style webhooks.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/benchcmd"
	"github.com/kanca/kanca/cmd/kanca/deliveriescmd"
	"github.com/kanca/kanca/cmd/kanca/democmd"
	"github.com/kanca/kanca/cmd/kanca/doctorcmd"
	"github.com/kanca/kanca/cmd/kanca/envdefault"
	"github.com/kanca/kanca/cmd/kanca/hookscmd"
	"github.com/kanca/kanca/cmd/kanca/replaycmd"
	"github.com/kanca/kanca/cmd/kanca/runcmd"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "kanca:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "kanca",
		Short: "Bulutfon-style call webhooks from your Asterisk",
		Long: `kanca attaches to a PBX (Asterisk through ARI) and turns every call's
lifecycle into Bulutfon-style webhooks: call_init, call_init_extension,
call_init_group, call_init_menu, fax_init, call_hangup (with a CDR and
callflow) and missing_call, POSTed as JSON or PHP-friendly form data to the
hooks you bind to each public number. Every event is stored before it is
sent and retried until the receiver takes it.

Start with 'kanca demo' to see it work on recorded calls, then bind hooks
with 'kanca hooks add' and start the daemon with 'kanca run'.`,
		Example: `  kanca demo
  kanca hooks add --number 908508850000 --url https://crm.example.com/kanca --format form
  KANCA_ARI_USER=kanca KANCA_ARI_PASSWORD=secret kanca run`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	db := root.PersistentFlags().String("db", envdefault.String("KANCA_DB", "kanca.db"),
		"SQLite database holding hooks, the outbox and call records [KANCA_DB]")
	root.AddCommand(runcmd.New(db), hookscmd.New(db), deliveriescmd.New(db), doctorcmd.New(db), democmd.New(), replaycmd.New(), benchcmd.New())
	return root
}
