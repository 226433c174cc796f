// Package storecli holds the plumbing shared by the commands that work on
// kanca's database (hooks, deliveries): opening the store, failing without
// a usage dump.
package storecli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cmd/kanca/natsflags"
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

// Target is where a command works: the local database, or with --nats
// the cluster's hooks and delivery log.
type Target struct {
	DB   *string
	NATS natsflags.Flags
}

// WithStore opens the local database for f; with --nats it refuses,
// naming the command as local-only.
func (t *Target) WithStore(create bool, f func(ctx context.Context, s *hooks.Store) error) error {
	if t.NATS.Set() {
		return errors.New("this command works on the local database only; drop --nats (and KANCA_NATS_URL)")
	}
	return WithStore(*t.DB, create, f)
}

// WithHooks gives f the hooks: the local database's or the cluster's.
func (t *Target) WithHooks(create bool, f func(ctx context.Context, s hooks.Catalog) error) error {
	return t.with(create, func(ctx context.Context, s both) error { return f(ctx, s) })
}

// WithLog gives f the delivery log: the local database's or the cluster's.
func (t *Target) WithLog(f func(ctx context.Context, l hooks.DeliveryLog) error) error {
	return t.with(false, func(ctx context.Context, s both) error { return f(ctx, s) })
}

// both is what the store and the cluster each answer.
type both interface {
	hooks.Catalog
	hooks.DeliveryLog
}

func (t *Target) with(create bool, f func(ctx context.Context, s both) error) error {
	if !t.NATS.Set() {
		return WithStore(*t.DB, create, func(ctx context.Context, s *hooks.Store) error { return f(ctx, s) })
	}
	return t.WithCluster(func(ctx context.Context, c *cluster.Conn) error {
		hs, err := c.Hooks(ctx)
		if err != nil {
			return err
		}
		return f(ctx, hs)
	})
}

// WithCluster connects to the cluster for f, failing rather than waiting
// when no server answers.
func (t *Target) WithCluster(f func(ctx context.Context, c *cluster.Conn) error) error {
	c, err := t.NATS.ConnectOnce("kanca cli")
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return f(ctx, c)
}

// Users says who must see what was stored.
func (t *Target) Users() string {
	if t.NATS.Set() {
		return "every kanca deliver on this cluster uses it within a second"
	}
	return "kanca run must use the same database (--db or KANCA_DB)"
}
