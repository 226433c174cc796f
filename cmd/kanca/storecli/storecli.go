// Package storecli holds the plumbing shared by the commands that work on
// kanca's database (hooks, deliveries): opening the store, failing without
// a usage dump.
package storecli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/hooks"
)

// RunE wraps a command body: once the arguments parsed, a failure is about
// the work, not the syntax, so cobra's usage text would only bury it.
func RunE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		return f(cmd, args)
	}
}

// WithStore opens the database at db for f and closes it after. Only
// commands that make something (hooks add) create a missing database; the
// others refuse it, so a mistyped --db is not taken for an empty one.
func WithStore(db string, create bool, f func(ctx context.Context, s *hooks.Store) error) error {
	open := hooks.OpenExisting
	if create {
		open = hooks.Open
	}
	s, err := open(db)
	if err != nil {
		return err
	}
	defer s.Close()
	return f(context.Background(), s)
}
