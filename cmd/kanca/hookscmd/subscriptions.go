package hookscmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/storecli"
	"github.com/kanca/kanca/hooks"
)

func importCmd(db *storecli.Target) *cobra.Command {
	var number string
	cmd := &cobra.Command{
		Use:   "import FILE",
		Short: "Add and change hooks from a subscription file",
		Long: `Add and change hooks from a subscription file ("-" reads standard input).

The file has Hotline's shape, one JSON object mapping each URL to the
events it wants, for the number given with --number:

  {"https://crm.example/hook": ["call_init", "call_hangup"]}

A URL may map instead to an object of kanca's fields, or to a list of them
(one per number): number, events, format, method, preset, lang, tz,
templates ({"url", "body", "headers"}), params, user, password or
password_env, secret or secret_env, domain_id, account_id, timeout,
insecure_skip_verify, max_in_flight, disabled. 'kanca hooks export' writes
one.

Hooks are matched by number and URL: a new one is added, one that differs
is changed (the output names what changed), an equal one is left alone;
hooks not in the file are not touched. An entry is the whole hook: a field
it leaves out takes its default, so a list of events alone resets a hook's
other settings. Everything is checked first and applied in one
transaction: an import applies whole or not at all, and importing a file
twice changes nothing. A credential written as **** (as export writes
them) keeps the stored one. "disabled": true adds a hook disabled, or
disables it; an import enables none (kanca hooks enable says what becomes
of the events held meanwhile).`,
		Example: `  kanca hooks import hooks.json --number 908508850000
  kanca hooks export > hooks.json && kanca hooks import hooks.json   # changes nothing`,
		Args: cobra.ExactArgs(1),
		RunE: storecli.RunE(func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return fmt.Errorf("import: %w", err)
				}
				defer f.Close()
				r = f
			}
			hs, err := hooks.ParseSubscriptions(r, number, os.LookupEnv)
			if err != nil {
				return err
			}
			return db.WithStore(true, func(ctx context.Context, s *hooks.Store) error {
				rep, err := s.Import(ctx, hs)
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				for _, x := range []struct {
					verb string
					hs   []hooks.Hook
				}{{"added", rep.Added}, {"changed", rep.Changed}, {"unchanged", rep.Unchanged}} {
					for _, h := range x.hs {
						switch what := rep.What[h.ID]; {
						case x.verb == "changed":
							fmt.Fprintf(w, "%-9s %s: %s\n", x.verb, h, strings.Join(what, ", "))
						case x.verb == "added" && !h.Enabled:
							fmt.Fprintf(w, "%-9s %s, disabled\n", x.verb, h)
						default:
							fmt.Fprintf(w, "%-9s %s\n", x.verb, h)
						}
					}
				}
				fmt.Fprintf(w, "%d added, %d changed, %d unchanged\n", len(rep.Added), len(rep.Changed), len(rep.Unchanged))
				return nil
			})
		}),
	}
	cmd.Flags().StringVar(&number, "number", "", "the PBX number of entries that name none")
	return cmd
}

func exportCmd(db *storecli.Target) *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Print every hook as a subscription file",
		Long: `Print every hook as a subscription file (see 'kanca hooks import'),
credentials masked as ****: importing it back changes nothing, and it can
be kept in version control without leaking a password or key.`,
		Example: "  kanca hooks export > hooks.json",
		Args:    cobra.NoArgs,
		RunE: storecli.RunE(func(cmd *cobra.Command, _ []string) error {
			return db.WithStore(false, func(ctx context.Context, s *hooks.Store) error {
				hs, err := s.ListHooks(ctx)
				if err != nil {
					return err
				}
				for _, h := range hs {
					if twins := hooks.Twins(hs, h); len(twins) > 0 && twins[0] > h.ID {
						fmt.Fprintf(cmd.ErrOrStderr(), "warning: hooks %d and %d send the calls of %s to the same URL: kanca hooks import refuses this file until one of them is removed\n", h.ID, twins[0], h.Number)
					}
				}
				return hooks.ExportSubscriptions(cmd.OutOrStdout(), hs)
			})
		}),
	}
}
