// Package keyscmd is `kanca keys`: the API keys that may ask kanca to
// place calls. It parses flags and calls package autodial; nothing more.
package keyscmd

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/cmd/kanca/storecli"
	"github.com/kanca/kanca/cmd/kanca/table"
)

// New returns the `keys` command; db points at the root's --db value.
func New(db *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the API keys that may ask kanca to place calls",
		Long: `Manage the API keys of calls on request (kanca run --dial).

An endpoint that places calls is what toll fraudsters look for, so every
request needs a key, and each key says what it may do:

  --allow          the number prefixes it may call, in international digits
                   (90: anywhere in Turkey; 905: Turkish mobiles). Another
                   country needs its own prefix.
  --allow-premium  premium-rate numbers too (Turkey's 0900 and 0898, and
                   any country's the numbering plan marks premium-rate);
                   refused otherwise
  --budget         calls a day (in --tz); past it requests get 402
  --rate           requests a minute; past it requests get 429
  --from           the PBX numbers it may call from; the first is the default

The key is shown once, when added: kanca keeps only its hash. Requests
send it as X-Webhook-Key (Alertalk), Authorization: Bearer (Alertmanager)
or ?apikey= (Bulutfon). Keys live in the call database beside --db
(kanca.db -> kanca.calls.db).`,
		Example: `  kanca keys add grafana --from 908508850000 --allow 905 --budget 50 --rate 10
  kanca keys list
  kanca keys remove grafana`,
	}
	var asJSON bool
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.AddCommand(addCmd(db), listCmd(db, &asJSON), removeCmd(db))
	return cmd
}

func withStore(db string, f func(ctx context.Context, s *autodial.Store) error) error {
	s, err := autodial.Open(autodial.PathFor(db))
	if err != nil {
		return err
	}
	defer s.Close()
	return f(context.Background(), s)
}

// keyName is what a key may be called: it is printed in logs and tables.
var keyName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func addCmd(db *string) *cobra.Command {
	var k autodial.Key
	var allow, from string
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a key and print it (once)",
		Long: `add stores a new key with its rules and prints the key on stdout. It is
the only time the key is shown: kanca keeps its SHA-256 hash. A lost key
is removed and added again.`,
		Example: `  kanca keys add grafana --from 908508850000 --allow 905 --budget 50 --rate 10
  kanca keys add crm --from 908508850000,908508850001 --allow 90,44 --budget 500`,
		Args: cobra.ExactArgs(1),
		RunE: storecli.RunE(func(cmd *cobra.Command, args []string) error {
			k.Name = args[0]
			if !keyName.MatchString(k.Name) {
				return fmt.Errorf("key name %q: want letters, digits, '.', '_' or '-' (it is shown in logs and the audit trail)", k.Name)
			}
			for _, p := range strings.Split(allow, ",") {
				p = strings.TrimPrefix(strings.TrimSpace(p), "+")
				if p == "" {
					continue
				}
				if _, err := strconv.ParseUint(p, 10, 64); err != nil || p[0] == '0' {
					return fmt.Errorf("--allow %q: want prefixes of international digits, e.g. 90 or 905 (not 0532: 90532)", p)
				}
				k.Allow = append(k.Allow, p)
			}
			for _, n := range strings.Split(from, ",") {
				n = strings.TrimPrefix(strings.Join(strings.Fields(n), ""), "+")
				if n == "" {
					continue
				}
				if _, err := strconv.ParseUint(n, 10, 64); err != nil || n[0] == '0' {
					return fmt.Errorf("--from %q: want a PBX number in international digits, as hooks have them (908508850000)", n)
				}
				k.From = append(k.From, n)
			}
			if len(k.From) == 0 {
				return fmt.Errorf("--from: give the PBX number(s) this key may call from")
			}
			if k.DailyBudget < 1 {
				return fmt.Errorf("--budget %d: want at least 1 call a day", k.DailyBudget)
			}
			if k.RatePerMinute < 0 {
				return fmt.Errorf("--rate %d: want 0 (no limit) or more", k.RatePerMinute)
			}
			return withStore(*db, func(ctx context.Context, s *autodial.Store) error {
				secret, err := s.AddKey(ctx, k)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", secret)
				fmt.Fprintf(cmd.ErrOrStderr(), "key %q added; this is the only time it is shown\n", k.Name)
				return nil
			})
		}),
	}
	fs := cmd.Flags()
	fs.StringVar(&allow, "allow", "90", "comma-separated prefixes (international digits) it may call")
	fs.BoolVar(&k.AllowPremium, "allow-premium", false, "allow premium-rate numbers")
	fs.IntVar(&k.DailyBudget, "budget", 100, "calls a day")
	fs.IntVar(&k.RatePerMinute, "rate", 10, "requests a minute (0: no limit)")
	fs.StringVar(&from, "from", "", "comma-separated PBX numbers it may call from (required)")
	return cmd
}

func listCmd(db *string, asJSON *bool) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the keys (never the secrets)",
		Long:  "list prints each key's name and rules; the keys themselves are not kept.",
		Example: `  kanca keys list
  kanca keys list --json`,
		Args: cobra.NoArgs,
		RunE: storecli.RunE(func(cmd *cobra.Command, _ []string) error {
			return withStore(*db, func(ctx context.Context, s *autodial.Store) error {
				ks, err := s.Keys(ctx)
				if err != nil {
					return err
				}
				if ks == nil {
					ks = []autodial.Key{}
				}
				var rows [][]string
				for _, k := range ks {
					rows = append(rows, []string{k.Name, strings.Join(k.Allow, ","), table.YesNo(k.AllowPremium),
						strconv.Itoa(k.DailyBudget), strconv.Itoa(k.RatePerMinute), strings.Join(k.From, ",")})
				}
				return table.Printer{W: cmd.OutOrStdout(), JSON: *asJSON}.List(ks,
					[]string{"NAME", "ALLOW", "PREMIUM", "BUDGET/DAY", "RATE/MIN", "FROM"}, rows)
			})
		}),
	}
}

func removeCmd(db *string) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a key; its requests stay in the audit trail",
		Long: `remove deletes the key: requests with it get 403 from then on. Calls it
already queued are still placed; its requests stay in kanca calls list.`,
		Example: "  kanca keys remove grafana",
		Args:    cobra.ExactArgs(1),
		RunE: storecli.RunE(func(cmd *cobra.Command, args []string) error {
			return withStore(*db, func(ctx context.Context, s *autodial.Store) error {
				return s.RemoveKey(ctx, args[0])
			})
		}),
	}
}
