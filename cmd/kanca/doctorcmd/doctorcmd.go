// Package doctorcmd is `kanca doctor`: checks that kanca can work here,
// and says how to fix what stops it.
package doctorcmd

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/ariflags"
	"github.com/kanca/kanca/doctor"
)

// New returns the doctor command; db is the root's --db.
func New(db *string) *cobra.Command {
	var (
		af      ariflags.Flags
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that kanca can reach Asterisk, its database and its hooks",
		Long: `doctor runs, in order, the checks kanca run depends on and prints OK or
FAIL for each, with the fix for a failure:

  ARI reachable           GET /ari/asterisk/info answers
  credentials accepted    the ari.conf user and password are taken
  subscribeAll works      the events WebSocket opens with subscribeAll=true
  linkedid reaches kanca  live channels carry CHANNEL(linkedid) in channelvars
                          (WARN when no channel is live: it can't tell)
  database writable       the database opens and takes a write (rolled back)
  hook N answers          each enabled hook's host answers a HEAD request
                          (any HTTP status counts)

It takes the same ARI flags and environment as kanca run, and exits
non-zero when any check fails.`,
		Example: `  KANCA_ARI_PASSWORD=secret kanca doctor --ari-user kanca
  kanca doctor --ari-url http://10.0.0.2:8088 --ari-user kanca --ari-password-file /etc/kanca/ari.pass --db /var/lib/kanca/kanca.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: must be positive", timeout)
			}
			acfg, err := af.Config(slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			rs := doctor.Run(cmd.Context(), doctor.Config{ARI: acfg, DB: *db, Timeout: timeout}, func(r doctor.Result) {
				fmt.Fprintf(w, "%-4s  %s: %s\n", r.Status, r.Check, r.Detail)
				if r.Fix != "" && (r.Status == doctor.Fail || r.Status == doctor.Warn) {
					fmt.Fprintf(w, "      fix: %s\n", r.Fix)
				}
			})
			if n := doctor.Failed(rs); n > 0 {
				return fmt.Errorf("%d of %d checks failed", n, len(rs))
			}
			return nil
		},
	}
	fs := cmd.Flags()
	af.Register(fs)
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long each network check may take")
	return cmd
}
