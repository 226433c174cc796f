// Command kanca attaches to a PBX and turns every call's lifecycle into
// Bulutfon-style webhooks.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/replaycmd"
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
hooks you bind to each public number.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(replaycmd.New())
	return root
}
