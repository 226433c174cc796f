// Package replaycmd is `kanca replay`: recorded PBX events in, the webhook
// bodies kanca would send out.
package replaycmd

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/ari"
	"github.com/kanca/kanca/cmd/kanca/termline"
	"github.com/kanca/kanca/cmd/kanca/trackerflags"
	"github.com/kanca/kanca/esl"
	"github.com/kanca/kanca/replay"
)

// New returns the replay command.
func New() *cobra.Command {
	var f trackerflags.Flags
	var quiet bool
	var pbx string
	cmd := &cobra.Command{
		Use:   "replay FILE...",
		Short: "Print the webhooks that recorded PBX events would produce",
		Long: `replay reads recorded PBX events, one JSON object per line (NDJSON,
gzip-compressed when the name ends in .gz, "-" for standard input), runs
them through the same call tracker as 'kanca run', and prints each webhook
body as JSON, one per line, in the order it would be POSTed.

--pbx asterisk (the default) reads raw ARI WebSocket frames: record them
with any WebSocket client subscribed to
/ari/events?app=kanca&subscribeAll=true. --pbx freeswitch reads
event-socket events in the "event json" format (one event per line, as
'event json ALL' sends them); they are put back in Event-Sequence order
first, as the live connection does.

Use it to check how kanca reads your dialplan before going live: record,
replay, and read the events. Calls still open when the input ends are not
printed.`,
		Example: `  kanca replay testdata/ari/s01-answered-caller-hangs-up/events.ndjson
  kanca replay --tz Europe/Istanbul --dialplan my-dialplan.yaml today.ndjson.gz | jq .event_type
  zcat big.ndjson.gz | kanca replay -
  kanca replay --pbx freeswitch testdata/esl/f01_inbound_answered_caller_hangup/events.ndjson`,
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
			o := replay.Options{Decode: ari.DecodeReading(tcfg.ReadsVariable), Tracker: tcfg, Format: fo}
			switch pbx {
			case "asterisk":
				o.Mistaken = func(frame []byte) string {
					if f, err := esl.ParseJSON(frame); err == nil && f.Get("Event-Name") != "" {
						return "a FreeSWITCH event: replay it with --pbx freeswitch"
					}
					return ""
				}
			case "freeswitch":
				o.Decode, o.Reorder = esl.Decode, esl.Reorder
				o.Mistaken = func(frame []byte) string {
					var head struct {
						Type      string `json:"type"`
						Timestamp string `json:"timestamp"`
					}
					if json.Unmarshal(frame, &head) == nil && head.Type != "" && head.Timestamp != "" {
						return "an Asterisk ARI frame: replay it with --pbx asterisk, the default"
					}
					return ""
				}
			default:
				return fmt.Errorf("--pbx %q: want asterisk or freeswitch", pbx)
			}
			stderr := cmd.ErrOrStderr()
			var line *termline.Line
			if !quiet {
				line = termline.New(stderr)
			}
			if line != nil {
				o.Progress = func(n int) { line.Show("replay: %d frames read", n) }
			}
			st, err := replay.Files(args, cmd.InOrStdin(), cmd.OutOrStdout(), o)
			line.Clear()
			if !quiet && (err == nil || st.Frames > 0) {
				fmt.Fprintf(stderr, "replay: %d frames read, %d used, %d webhooks written\n", st.Frames, st.Inputs, st.Events)
			}
			return err
		},
	}
	f.Register(cmd.Flags())
	cmd.Flags().StringVar(&pbx, "pbx", "asterisk", "what recorded the events: asterisk (ARI frames) or freeswitch (event-socket events, json format)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print no progress or summary on standard error")
	return cmd
}
