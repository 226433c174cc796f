// Package replaycmd is `kanca replay`: recorded PBX events in, the webhook
// bodies kanca would send out.
package replaycmd

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cmd/kanca/trackerflags"
	"github.com/kanca/kanca/replay"
)

// New returns the replay command.
func New() *cobra.Command {
	var f trackerflags.Flags
	var quiet bool
	cmd := &cobra.Command{
		Use:   "replay FILE...",
		Short: "Print the webhooks that recorded ARI events would produce",
		Long: `replay reads raw ARI WebSocket frames, one JSON object per line (NDJSON,
gzip-compressed when the name ends in .gz, "-" for standard input), runs
them through the same call tracker as 'kanca run', and prints each webhook
body as JSON, one per line, in the order it would be POSTed.

Use it to check how kanca reads your dialplan before going live: record
frames with any WebSocket client subscribed to
/ari/events?app=kanca&subscribeAll=true, replay them, and read the events.
Calls still open when the input ends are not printed.`,
		Example: `  kanca replay testdata/ari/s01-answered-caller-hangs-up/events.ndjson
  kanca replay --tz Europe/Istanbul --dialplan my-dialplan.yaml today.ndjson.gz | jq .event_type
  zcat big.ndjson.gz | kanca replay -`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tcfg, err := f.Tracker()
			if err != nil {
				return err
			}
			fo, err := f.Format()
			if err != nil {
				return err
			}
			o := replay.Options{Decode: ari.Decode, Tracker: tcfg, Format: fo}
			stderr := cmd.ErrOrStderr()
			progress := !quiet && isTerminal(stderr)
			if progress {
				o.Progress = func(n int) { fmt.Fprintf(stderr, "\rreplay: %d frames read", n) }
			}
			st, err := replay.Files(args, cmd.InOrStdin(), cmd.OutOrStdout(), o)
			if !quiet {
				if progress {
					fmt.Fprint(stderr, "\r")
				}
				fmt.Fprintf(stderr, "replay: %d frames read, %d used, %d webhooks written\n", st.Frames, st.Inputs, st.Events)
			}
			return err
		},
	}
	f.Register(cmd.Flags())
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print no progress or summary on standard error")
	return cmd
}

// isTerminal keeps progress lines, which rewrite themselves, out of logs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
