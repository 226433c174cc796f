// Package doctorcmd is `kanca doctor`: checks that kanca can work here,
// and says how to fix what stops it.
package doctorcmd

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/pbxflags"
	"github.com/kanca/kanca/doctor"
)

// New returns the doctor command; db is the root's --db.
func New(db *string) *cobra.Command {
	var (
		pf        pbxflags.Flags
		timeout   time.Duration
		originate bool
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check that kanca can reach the PBX, its database and its hooks",
		Long: `doctor runs, in order, the checks kanca run depends on and prints OK or
FAIL for each, with the fix for a failure. With --pbx asterisk (the
default):

  ARI reachable           GET /ari/asterisk/info answers
  credentials accepted    the ari.conf user and password are taken
  subscribeAll works      the events WebSocket opens with subscribeAll=true
  linkedid reaches kanca  live channels carry CHANNEL(linkedid) in channelvars
                          (WARN when no channel is live: it can't tell)

With --pbx freeswitch:

  event socket reachable  FreeSWITCH's mod_event_socket greets kanca at
                          --esl-addr (not turned away by apply-inbound-acl)
  password accepted       event_socket.conf.xml's password is taken
  event json works        the subscription kanca makes is accepted
  channel list works      "show channels as json" answers (kanca reconciles
                          with it after every reconnect)

Then, for both:

  database writable       the database opens and takes a write (rolled back)
  hook N answers          each enabled hook's host answers a HEAD request
                          (any HTTP status counts)

It takes the same PBX flags and environment as kanca run, and exits
non-zero when any check fails.`,
		Example: `  KANCA_ARI_PASSWORD=secret kanca doctor --ari-user kanca
  kanca doctor --ari-url http://10.0.0.2:8088 --ari-user kanca --ari-password-file /etc/kanca/ari.pass --db /var/lib/kanca/kanca.db

  # FreeSWITCH's event socket
  KANCA_ESL_PASSWORD=secret kanca doctor --pbx freeswitch --esl-addr 127.0.0.1:8021`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: must be positive", timeout)
			}
			if err := pf.Check(); err != nil {
				return err
			}
			quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
			dcfg := doctor.Config{PBX: pf.PBX, DB: *db, Timeout: timeout, Originate: originate}
			var err error
			if pf.PBX == pbxflags.FreeSWITCH {
				dcfg.ESL, err = pf.ESL.Config(quiet)
			} else {
				dcfg.ARI, err = pf.ARI.Config(quiet)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			rs := doctor.Run(cmd.Context(), dcfg, func(r doctor.Result) {
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
	pf.Register(fs)
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long each network check may take")
	fs.BoolVar(&originate, "originate", false, "also check that the PBX user may place calls, as kanca run --dial needs (places no call)")
	return cmd
}
