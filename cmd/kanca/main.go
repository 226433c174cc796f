// Command kanca attaches to a PBX and turns every call's lifecycle into
// Bulutfon-style webhooks.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/benchcmd"
	"github.com/kanca/kanca/cmd/kanca/callscmd"
	"github.com/kanca/kanca/cmd/kanca/delivercmd"
	"github.com/kanca/kanca/cmd/kanca/deliveriescmd"
	"github.com/kanca/kanca/cmd/kanca/democmd"
	"github.com/kanca/kanca/cmd/kanca/doctorcmd"
	"github.com/kanca/kanca/cmd/kanca/envdefault"
	"github.com/kanca/kanca/cmd/kanca/hookscmd"
	"github.com/kanca/kanca/cmd/kanca/keyscmd"
	"github.com/kanca/kanca/cmd/kanca/replaycmd"
	"github.com/kanca/kanca/cmd/kanca/runcmd"
	"github.com/kanca/kanca/cmd/kanca/statuscmd"
	"github.com/kanca/kanca/cmd/kanca/versioncmd"
	"github.com/kanca/kanca/version"
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
		Short: "Bulutfon-style call webhooks from your Asterisk or FreeSWITCH",
		Long: `kanca attaches to a PBX (Asterisk through ARI, FreeSWITCH through its
event socket) and turns every call's lifecycle into Bulutfon-style
webhooks: call_init, call_init_extension, call_init_group, call_init_menu,
fax_init, call_hangup (with a CDR and callflow) and missing_call, POSTed as
JSON or PHP-friendly form data to the hooks you bind to each public number. Every event is stored before it is
sent and retried until the receiver takes it.

Start with 'kanca demo' to see it work on recorded calls, then bind hooks
with 'kanca hooks add' and start the daemon with 'kanca run'.`,
		Example: `  kanca demo
  kanca hooks add --number 908508850000 --url https://crm.example.com/kanca --format form
  KANCA_ARI_USER=kanca KANCA_ARI_PASSWORD=secret kanca run
  KANCA_ESL_PASSWORD=secret kanca run --pbx freeswitch`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	db := root.PersistentFlags().String("db", envdefault.String("KANCA_DB", "kanca.db"),
		"SQLite database holding hooks, the outbox and call records [KANCA_DB]")
	root.AddCommand(runcmd.New(db), delivercmd.New(), statuscmd.New(db), hookscmd.New(db), deliveriescmd.New(db), keyscmd.New(db),
		callscmd.New(db), doctorcmd.New(db),
		democmd.New(), replaycmd.New(), benchcmd.New(), versioncmd.New())
	root.Version = version.Get().String()
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if !c.HasParent() {
			// main adds the one "kanca: " prefix.
			return fmt.Errorf("%w (see 'kanca --help')", err)
		}
		return fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())
	})
	// Added now rather than at Execute, so strictArgs sees them too.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	strictArgs(root)
	return root
}

// strictArgs makes every command refuse arguments it does not take with one
// line naming the command. Left to cobra, a group such as `kanca hooks`
// prints its help and exits 0 for a mistyped subcommand, and the root's
// "did you mean" spans several lines.
func strictArgs(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictArgs(sub)
	}
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = unknownSubcommand
		c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		return
	}
	if check := c.Args; check != nil {
		c.Args = func(c *cobra.Command, args []string) error {
			err := check(c, args)
			switch {
			case err == nil:
				return nil
			case strings.Contains(err.Error(), c.CommandPath()):
				return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
			}
			return fmt.Errorf("%s: %w (see '%s --help')", c.CommandPath(), err, c.CommandPath())
		}
	}
}

func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // cobra's own default, applied only on its path
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return fmt.Errorf("%s (see '%s --help')", msg, c.CommandPath())
}
