// Package statuscmd is `kanca status`: what an admin asks first, from the
// running daemon or, when none answers, from the database.
package statuscmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cmd/kanca/storecli"
	"github.com/kanca/kanca/cmd/kanca/table"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/status"
)

// New returns the status command; db points at the root's --db value.
func New(db *string) *cobra.Command {
	var listen string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Is the PBX connected, how many calls are live, what waits for each hook",
		Long: `Show what kanca is doing: whether the PBX is connected and since when, how
many calls are live, and for each hook how many deliveries are queued,
held (the hook is disabled) and dead, and when it last succeeded and
failed.

With --listen (or KANCA_LISTEN, as kanca run reads it) the running daemon
is asked at /status. When none answers there, or without --listen, the
database is read: the hooks' queues only, and which kanca run (pid, host)
holds the database, if one does.`,
		Example: `  kanca status --listen 127.0.0.1:9090
  kanca status --db /var/lib/kanca/kanca.db
  kanca status --json`,
		Args: cobra.NoArgs,
		RunE: storecli.RunE(func(cmd *cobra.Command, _ []string) error {
			var rep status.Report
			var err error
			asked := false
			if listen != "" {
				rep, err = ask(cmd.Context(), listen)
				if err == nil {
					asked = true
				} else {
					fmt.Fprintf(cmd.ErrOrStderr(), "no kanca run answered on %s (%v); reading the database\n", listen, err)
				}
			}
			if !asked {
				err = storecli.WithStore(*db, false, func(ctx context.Context, s *hooks.Store) error {
					rep, err = status.FromStore(ctx, s)
					return err
				})
				if err != nil {
					return err
				}
			}
			if asJSON {
				return table.PrintJSON(cmd.OutOrStdout(), rep)
			}
			return printReport(cmd.OutOrStdout(), rep, time.Now())
		}),
	}
	cmd.Flags().StringVar(&listen, "listen", os.Getenv("KANCA_LISTEN"), "the address kanca run --listen serves on, e.g. 127.0.0.1:9090 [KANCA_LISTEN]")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of text")
	return cmd
}

// ask gets the daemon's /status.
func ask(ctx context.Context, listen string) (status.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+listen+"/status", nil)
	if err != nil {
		return status.Report{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return status.Report{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return status.Report{}, fmt.Errorf("GET /status: HTTP %s", resp.Status)
	}
	var rep status.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return status.Report{}, fmt.Errorf("GET /status: %w", err)
	}
	return rep, nil
}
