// Package runcmd is `kanca run`: the daemon.
package runcmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cdr"
	"github.com/kanca/kanca/cmd/kanca/logflags"
	"github.com/kanca/kanca/cmd/kanca/trackerflags"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/pipeline"
)

// New returns the run command; db is the root's --db.
func New(db *string) *cobra.Command {
	var (
		tf           trackerflags.Flags
		lf           logflags.Flags
		ariURL       string
		ariUser      string
		ariApp       string
		passwordFile string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Attach to Asterisk and deliver call webhooks (the daemon)",
		Long: `run connects to Asterisk's ARI (subscribed to every channel), follows every
call, stores each call event for each matching hook in the database, and
delivers them with retries. Stop it with SIGTERM or Ctrl-C: it stops taking
PBX events, finishes the requests in flight and leaves the rest queued for
the next start.

The ARI password is read from KANCA_ARI_PASSWORD or --ari-password-file,
never from the command line.`,
		Example: `  export KANCA_ARI_PASSWORD=secret
  kanca run --ari-url http://127.0.0.1:8088 --ari-user kanca --db /var/lib/kanca/kanca.db

  # JSON logs for a log shipper, ISO times in Istanbul time
  kanca run --log-format json --tz Europe/Istanbul`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			tcfg, err := tf.Tracker()
			if err != nil {
				return err
			}
			fo, err := tf.Format()
			if err != nil {
				return err
			}
			password := os.Getenv("KANCA_ARI_PASSWORD")
			if passwordFile != "" {
				b, err := os.ReadFile(passwordFile)
				if err != nil {
					return fmt.Errorf("read ARI password: %w", err)
				}
				password = strings.TrimSpace(string(b))
			}
			src, err := ari.New(ari.Config{URL: ariURL, User: ariUser, Password: password, App: ariApp, Logger: log})
			if err != nil {
				return err
			}
			store, err := hooks.Open(*db)
			if err != nil {
				return err
			}
			defer store.Close()

			p := &pipeline.Pipeline{
				Source:     src,
				Tracker:    cdr.NewTracker(tcfg),
				Outbox:     hooks.NewOutbox(store, hooks.OutboxOptions{Encoding: hooks.Encoding{Location: fo.Location, NumbersAsStrings: fo.NumbersAsStrings}}),
				Dispatcher: hooks.NewDispatcher(store, hooks.DispatchOptions{Logger: log}),
				Logger:     log,
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log.Info("kanca running", "ari", ariURL, "app", ariApp, "db", *db)
			err = p.Run(ctx)
			st := p.Stats()
			log.Info("kanca stopped", "pbx_events", st.Inputs, "call_events", st.Events, "open_calls", st.LiveCalls)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ariURL, "ari-url", envOr("KANCA_ARI_URL", "http://127.0.0.1:8088"), "Asterisk HTTP server with ARI [KANCA_ARI_URL]")
	fs.StringVar(&ariUser, "ari-user", os.Getenv("KANCA_ARI_USER"), "ari.conf user [KANCA_ARI_USER]")
	fs.StringVar(&ariApp, "ari-app", envOr("KANCA_ARI_APP", "kanca"), "ARI application name kanca subscribes as [KANCA_ARI_APP]")
	fs.StringVar(&passwordFile, "ari-password-file", os.Getenv("KANCA_ARI_PASSWORD_FILE"), "file holding the ARI password (else KANCA_ARI_PASSWORD) [KANCA_ARI_PASSWORD_FILE]")
	tf.Register(fs)
	lf.Register(fs)
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
