// Package deliveriescmd is `kanca deliveries`: what was sent to which hook,
// what failed, and replaying it. It parses flags and calls package hooks.
package deliveriescmd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/storecli"
	"github.com/kanca/kanca/cmd/kanca/table"
	"github.com/kanca/kanca/cmd/kanca/termline"
	"github.com/kanca/kanca/hooks"
)

// New returns the `deliveries` command; db points at the root's --db value.
func New(path *string) *cobra.Command {
	var asJSON bool
	db := &storecli.Target{DB: path}
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "Inspect and replay webhook deliveries",
		Long: `Inspect and replay webhook deliveries.

Each event bound for a hook is one delivery, with an id that stays the same
across retries (sent as X-Kanca-Delivery and webhook-id). A delivery is
pending, retrying, delivered, dead (given up after the last retry, or
because its hook answered 410 Gone) or held (an event of a disabled hook,
sent when 'kanca hooks enable' enables it). Dead and held deliveries are
kept until replayed, or for kanca run's --dead-retention (30 days).`,
		Example: `  kanca deliveries list --state dead
  kanca deliveries show 0190a5c2-7f3e-7b41-9c1d-2a6f0b8e4d21
  kanca deliveries retry --dead --hook 1`,
	}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	db.NATS.Register(cmd.PersistentFlags())
	out := func(c *cobra.Command) printer { return printer{table.Printer{W: c.OutOrStdout(), JSON: asJSON}} }
	cmd.AddCommand(listCmd(db, out), showCmd(db, out), retryCmd(db))
	return cmd
}

func listCmd(db *storecli.Target, out func(*cobra.Command) printer) *cobra.Command {
	var f hooks.Filter
	var state string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List deliveries, newest first",
		Long: `List deliveries, newest first, at most --limit of them (default 100).
--hook, --state and --call narrow the list; they combine.

Each row is one event bound for one hook: its delivery id, hook, call uuid,
sequence number within the call, event, state, attempts so far, when the
next attempt is due (pending and retrying only; "after seq N" when it waits
for an earlier event of its call to be sent first; "on enable" when held for
a disabled hook) and the last error.

Start here when a receiver says it missed something: --call UUID shows
what became of each event of that call, --state dead what kanca gave up
on, and 'kanca deliveries show ID' the attempts of one delivery.`,
		Example: `  kanca deliveries list
  kanca deliveries list --hook 1 --state retrying
  kanca deliveries list --call f615986c-2001-11e5-bdee-6599352d46ce --json`,
		Args: cobra.NoArgs,
		RunE: storecli.RunE(func(cmd *cobra.Command, _ []string) error {
			if state != "" {
				st, err := hooks.ParseState(state)
				if err != nil {
					return err
				}
				f.State = st
			}
			if f.Limit < 0 {
				return fmt.Errorf("--limit %d: must not be negative", f.Limit)
			}
			return db.WithLog(func(ctx context.Context, s hooks.DeliveryLog) error {
				if f.HookID != 0 {
					if _, err := s.GetHook(ctx, f.HookID); err != nil {
						return err
					}
				}
				ds, err := s.Deliveries(ctx, f)
				if err != nil {
					return err
				}
				behind, err := s.Behind(ctx, ds)
				if err != nil {
					return err
				}
				return out(cmd).deliveries(ds, behind)
			})
		}),
	}
	cmd.Flags().Int64Var(&f.HookID, "hook", 0, "only this hook's")
	cmd.Flags().StringVar(&state, "state", "", "only in this state: pending, retrying, delivered, dead or held")
	cmd.Flags().StringVar(&f.CallID, "call", "", "only this call's (its uuid)")
	cmd.Flags().IntVar(&f.Limit, "limit", hooks.DefaultListLimit, "at most this many")
	return cmd
}

func showCmd(db *storecli.Target, out func(*cobra.Command) printer) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a delivery, its body and every attempt",
		Long: `Show one delivery: its state and timing, the body exactly as it is POSTed,
and every attempt with its time, HTTP status, latency, error and the first
KiB of the receiver's answer. The answer is usually what tells why a
receiver refused a delivery.

Attempts, and delivered deliveries, are pruned after 30 days; dead and
held deliveries after kanca run's --dead-retention (30 days; 0 keeps them
until retried).`,
		Example: "  kanca deliveries show 0190a5c2-7f3e-7b41-9c1d-2a6f0b8e4d21",
		Args:    cobra.ExactArgs(1),
		RunE: storecli.RunE(func(cmd *cobra.Command, args []string) error {
			return db.WithLog(func(ctx context.Context, s hooks.DeliveryLog) error {
				d, atts, err := s.Delivery(ctx, args[0])
				if err != nil {
					return err
				}
				behind, err := s.Behind(ctx, []hooks.Delivery{d})
				if err != nil {
					return err
				}
				return out(cmd).delivery(d, atts, behind[d.ID])
			})
		}),
	}
}

func retryCmd(db *storecli.Target) *cobra.Command {
	var dead bool
	var hookID int64
	cmd := &cobra.Command{
		Use:   "retry [ID]",
		Short: "Send a delivery again now, or every dead one",
		Long: `Queue a delivery to be sent again now, with a fresh retry schedule and the
same delivery id; or, with --dead, every dead delivery (of one hook with
--hook). A running kanca picks them up within its poll interval.

A receiver that drops duplicates by the delivery id (X-Kanca-Delivery)
takes a retried delivery that had arrived only once. Fix what made the
deliveries fail first (the LAST column of 'kanca deliveries list --state
dead' says what it was), then retry.

--dead works in batches of ` + strconv.Itoa(hooks.RetryDeadBatch) + `, oldest first, each committed on its own:
a running kanca keeps delivering meanwhile, and an interrupted retry keeps
what it requeued (run it again for the rest). On a terminal it shows its
progress on standard error; it always ends with the count.`,
		Example: `  kanca deliveries retry 0190a5c2-7f3e-7b41-9c1d-2a6f0b8e4d21
  kanca deliveries retry --dead
  kanca deliveries retry --dead --hook 1`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case dead && len(args) == 1:
				return errors.New("give either a delivery ID or --dead, not both")
			case !dead && len(args) == 0:
				return errors.New("give a delivery ID, or --dead to requeue every dead delivery")
			case !dead && cmd.Flags().Changed("hook"):
				return errors.New("--hook goes with --dead")
			}
			cmd.SilenceUsage = true
			return db.WithLog(func(ctx context.Context, s hooks.DeliveryLog) error {
				w := cmd.OutOrStdout()
				if !dead {
					if err := s.Retry(ctx, args[0]); err != nil {
						return err
					}
					d, _, err := s.Delivery(ctx, args[0])
					if err != nil {
						return err
					}
					h, err := s.GetHook(ctx, d.HookID)
					if err != nil {
						return err
					}
					if !h.Enabled {
						// Requeued, but nothing is sent to a disabled hook:
						// saying "requeued" alone made admins wait for it.
						fmt.Fprintf(w, "delivery %s waits for hook %d to be enabled: kanca hooks enable %d\n", args[0], h.ID, h.ID)
						return nil
					}
					fmt.Fprintf(w, "requeued delivery %s\n", args[0])
					return nil
				}
				line := termline.New(cmd.ErrOrStderr())
				n, err := s.RetryDeadProgress(ctx, hookID, func(done, total int) {
					line.Show("requeued %d of %d dead deliveries", done, total)
				})
				line.Clear()
				if err == nil || n > 0 {
					// Batches committed before a failure stay requeued.
					fmt.Fprintf(w, "requeued %d dead deliveries\n", n)
				}
				if err == nil && hookID != 0 && n > 0 {
					if h, herr := s.GetHook(ctx, hookID); herr == nil && !h.Enabled {
						fmt.Fprintf(w, "they wait for hook %d to be enabled: kanca hooks enable %d\n", hookID, hookID)
					}
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&dead, "dead", false, "requeue every dead delivery")
	cmd.Flags().Int64Var(&hookID, "hook", 0, "with --dead: only this hook's")
	return cmd
}

type printer struct{ table.Printer }

// deliveries lists ds; behind names the seq each waits behind, if any.
func (p printer) deliveries(ds []hooks.Delivery, behind map[string]int) error {
	if ds == nil {
		ds = []hooks.Delivery{}
	}
	rows := make([][]string, len(ds))
	for i, d := range ds {
		next := "-"
		if seq, ok := behind[d.ID]; ok {
			// Its own due time has passed or will, but it goes only after
			// the call's earlier event: a past time there read as stuck.
			next = "after seq " + strconv.Itoa(seq)
		} else if d.State == hooks.Pending || d.State == hooks.Retrying {
			next = stamp(d.NextAttempt)
		} else if d.State == hooks.Held {
			next = "on enable"
		}
		rows[i] = []string{d.ID, strconv.FormatInt(d.HookID, 10), d.CallID, strconv.Itoa(d.Seq), d.Event,
			string(d.State), strconv.Itoa(d.Attempts), next, table.Dash(d.LastError)}
	}
	return p.List(ds, []string{"ID", "HOOK", "CALL", "SEQ", "EVENT", "STATE", "ATTEMPTS", "NEXT", "LAST"}, rows)
}

// delivery prints d; behind is the earlier seq of its call it waits
// behind, 0 for none.
func (p printer) delivery(d hooks.Delivery, atts []hooks.Attempt, behind int) error {
	if atts == nil {
		atts = []hooks.Attempt{}
	}
	fs := []table.Field{
		table.F("id", d.ID),
		table.F("hook", strconv.FormatInt(d.HookID, 10)),
		table.F("call", d.CallID),
		table.F("seq", strconv.Itoa(d.Seq)),
		table.F("event", d.Event),
		table.F("state", string(d.State)),
		table.F("attempts", strconv.Itoa(d.Attempts)),
	}
	if d.State == hooks.Pending || d.State == hooks.Retrying {
		next := stamp(d.NextAttempt)
		if behind > 0 {
			// Its call's events go in order: this one's time is not its own.
			next = "after seq " + strconv.Itoa(behind) + " of its call is delivered"
		}
		fs = append(fs, table.F("next attempt", next))
	}
	fs = append(fs,
		table.F("last error", table.Dash(d.LastError)),
		table.F("created", stamp(d.Created)),
		table.F("updated", stamp(d.Updated)),
		table.F("content type", d.ContentType))
	err := p.Record(struct {
		hooks.Delivery
		Body     string          `json:"body"`
		Attempts []hooks.Attempt `json:"attempt_log"`
	}{d, string(d.Body), atts}, fs)
	if err != nil || p.JSON {
		return err
	}
	fmt.Fprintf(p.W, "\n%s\n", d.Body)
	if len(atts) == 0 {
		return nil
	}
	fmt.Fprintln(p.W)
	rows := make([][]string, len(atts))
	for i, a := range atts {
		status := "-"
		if a.Status != 0 {
			status = strconv.Itoa(a.Status)
		}
		rows[i] = []string{stamp(a.At), status, a.Latency.String(), table.Dash(a.Error), table.Dash(oneLine(a.Response, 80))}
	}
	return table.Columns(p.W, []string{"AT", "STATUS", "LATENCY", "ERROR", "RESPONSE"}, rows)
}

func stamp(t time.Time) string {
	if t.UnixMilli() == 0 {
		return "now"
	}
	return t.Format(time.RFC3339)
}

// oneLine keeps a response body from breaking the table.
func oneLine(s string, n int) string {
	b := []rune(s)
	if len(b) > n {
		b = append(b[:n], '…')
	}
	for i, r := range b {
		if r == '\n' || r == '\r' || r == '\t' {
			b[i] = ' '
		}
	}
	return string(b)
}
