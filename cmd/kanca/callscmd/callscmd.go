// Package callscmd is `kanca calls`: the audit trail of calls placed on
// request. It parses flags and calls package autodial; nothing more.
package callscmd

import (
	"context"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/autodial"
	"github.com/kanca/kanca/cmd/kanca/storecli"
	"github.com/kanca/kanca/cmd/kanca/table"
)

// New returns the `calls` command; db points at the root's --db value.
func New(db *string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "calls",
		Short: "Show the calls placed on request: who asked, which numbers, what happened",
		Long: `Show the audit trail of calls on request (kanca run --dial): every
request taken, with the key that asked, from which address, and each
number's state (queued, dialing, answered, acked = a key pressed,
unanswered, failed, skipped = an earlier number acknowledged,
interrupted = kanca stopped while placing it, not placed again).`,
		Example: `  kanca calls list
  kanca calls list --key grafana --limit 20 --json`,
	}
	var key string
	var limit int
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List requests, newest first, with their calls",
		Long: `list prints one line per number of each request: the request id and
time, the key, the endpoint kind (alertalk, automatic, call_and_bridge,
alertmanager, api), the requester's address, the number, its state, the
tries, the key pressed and what happened.`,
		Example: `  kanca calls list
  kanca calls list --key grafana --json`,
		Args: cobra.NoArgs,
		RunE: storecli.RunE(func(cmd *cobra.Command, _ []string) error {
			s, err := autodial.Open(autodial.PathFor(*db))
			if err != nil {
				return err
			}
			defer s.Close()
			vs, err := s.Requests(context.Background(), key, 0, limit)
			if err != nil {
				return err
			}
			if vs == nil {
				vs = []autodial.RequestView{}
			}
			var rows [][]string
			for _, v := range vs {
				for _, c := range v.Calls {
					rows = append(rows, []string{strconv.FormatInt(v.ID, 10), v.Created.Local().Format(time.DateTime),
						v.Key, v.Kind, v.Remote, c.Number, c.State, strconv.Itoa(c.Attempts), table.Dash(c.Gather), table.Dash(c.Outcome)})
				}
			}
			return table.Printer{W: cmd.OutOrStdout(), JSON: asJSON}.List(vs,
				[]string{"REQUEST", "TIME", "KEY", "KIND", "FROM", "NUMBER", "STATE", "TRIES", "DIGIT", "OUTCOME"}, rows)
		}),
	}
	list.Flags().StringVar(&key, "key", "", "only this key's requests")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many requests")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.AddCommand(list)
	return cmd
}
