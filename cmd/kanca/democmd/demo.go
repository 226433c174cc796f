// Package democmd is `kanca demo`: the whole pipeline on bundled calls.
package democmd

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/logflags"
	"github.com/kanca/kanca/demo"
)

// New returns the demo command.
func New() *cobra.Command {
	var (
		db      string
		pace    time.Duration
		tz      string
		verbose bool
		lf      logflags.Flags
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run kanca end to end on recorded calls from a real Asterisk",
		Long: `demo starts the real kanca pipeline (ARI client, call tracker, SQLite outbox,
HTTP delivery) against a built-in Asterisk simulator that replays calls
recorded from a real Asterisk 20 over a real WebSocket: answered and missed
calls, busy, an IVR menu, a queue, a ring group, an outbound call, a fax and
five concurrent calls. Each public number gets two hooks, one JSON and one
form, pointing at a local receiver that prints every webhook as it arrives.
It ends by itself with a summary.

Nothing leaves this machine: everything listens on 127.0.0.1.`,
		Example: `  kanca demo
  kanca demo --pace 20ms --tz Europe/Istanbul
  kanca demo --db demo.db && kanca deliveries list --db demo.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			loc := time.Local
			if tz != "" {
				l, err := time.LoadLocation(tz)
				if err != nil {
					return fmt.Errorf("time zone %q: %w", tz, err)
				}
				loc = l
			}
			o := demo.Options{DB: db, Pace: pace, Location: loc}
			if verbose {
				log, err := lf.Logger(cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				o.Logger = log
			}
			if o.DB == "" {
				dir, err := os.MkdirTemp("", "kanca-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				o.DB = filepath.Join(dir, "kanca.db")
			}
			out := cmd.OutOrStdout()
			sum, err := demo.Run(cmd.Context(), o, out)
			fmt.Fprintf(out, "\n%d calls (%d ARI frames) became %d webhooks to %d hooks in %s; expected %d, duplicates %d\n",
				sum.Calls, sum.Frames, sum.Delivered, sum.Hooks, sum.Elapsed.Round(time.Millisecond), sum.Expected, sum.Duplicates)
			types := make([]string, 0, len(sum.ByEvent))
			for t := range sum.ByEvent {
				types = append(types, t)
			}
			sort.Strings(types)
			for _, t := range types {
				fmt.Fprintf(out, "  %-20s %d\n", t, sum.ByEvent[t])
			}
			return err
		},
	}
	cmd.Flags().StringVar(&db, "db", "", "keep the demo's database in this file (default: a temporary file, removed at the end)")
	cmd.Flags().DurationVar(&pace, "pace", 2*time.Millisecond, "pause between ARI frames sent by the simulator")
	cmd.Flags().StringVar(&tz, "tz", os.Getenv("KANCA_TZ"), "time zone of the ISO times, e.g. Europe/Istanbul (default: this machine's)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "also print kanca's own logs on standard error")
	lf.Register(cmd.Flags())
	return cmd
}
