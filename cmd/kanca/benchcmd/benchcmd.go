// Package benchcmd is `kanca bench`: kanca's real pipeline under load from
// calls cloned from real Asterisk recordings, against same-run baselines.
package benchcmd

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/bench"
	"github.com/kanca/kanca/cmd/kanca/cpuprofile"
	"github.com/kanca/kanca/cmd/kanca/logflags"
)

// New returns the bench command.
func New() *cobra.Command {
	var (
		o       bench.Options
		short   bool
		profile string
		verbose bool
		readARI string // --cpu's bare reader
		lf      logflags.Flags
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure kanca under load from cloned real calls",
		Long: `bench clones calls from real Asterisk recordings (answered, missed, busy,
cancelled, IVR, queue, ring group, outbound, fax), each with fresh channel
ids, linkedids, bridge ids and caller numbers, and sends them through the
built-in Asterisk simulator's WebSocket into kanca's real pipeline: ARI
client, call tracker, SQLite outbox in a temporary database, and HTTP
delivery to a local receiver, one hook per public number.

It reports calls/s and deliveries/s, hangup-to-POST latency (from the
simulator sending the hangup frame to the receiver reading the POST), the
outbox depth each second, memory per live call (--concurrent), and the same
machine's baselines measured in the same run: a plain Go client POSTing the
same bodies with the same concurrency, and plain SQLite inserts of the same
rows. Targets are reported as PASS or MISS, never enforced.

--cpu and --slow-burst run one measure instead of the rest, with kanca as
a process of its own ('kanca run' against the simulator and receiver, a
temporary database, one JSON hook per public number), so that its CPU is
its own rusage, and --kanca points them at another binary, e.g. the
previous release, for figures side by side. --cpu reports CPU per call
beside a bare decode of the same frames and beside a process of this
binary that only reads them from the simulator at the same pace (what
waking for each frame costs); --slow-burst sends --burst-calls
calls at once to a receiver answering in --slow-delay and reports how long
until everything is delivered.

Everything listens on 127.0.0.1. Run it from the repository root (the
recordings are read from testdata/ari) or pass --traces.`,
		Example: `  kanca bench --short
  kanca bench --rate 200 --calls 4000
  kanca bench --rate 0 --calls 3000 --slow-hook
  kanca bench --calls 500 --concurrent 10000 --cpuprofile cpu.out
  kanca bench --cpu --rate 50 --calls 600
  kanca bench --cpu --rate 50 --calls 600 --kanca ./kanca-previous
  kanca bench --slow-burst --slow-delay 5s
  kanca bench --nats --rate 200 --calls 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if readARI != "" {
				// --cpu's bare reader, run by bench itself.
				n, err := bench.ReadFrames(cmd.Context(), readARI, "kanca", os.Getenv("KANCA_ARI_PASSWORD"))
				fmt.Fprintln(cmd.OutOrStdout(), n)
				return err
			}
			// bench.Options reads a non-positive size as "the default":
			// a negative one given here is a typo, not a request for it.
			for _, c := range []struct {
				flag, want string
				bad        bool
			}{
				{"calls", "more than 0", o.Calls <= 0}, {"rate", "0 or more", o.Rate < 0},
				{"speedup", "more than 0", o.Speedup <= 0}, {"concurrent", "0 or more", o.Concurrent < 0},
				{"baseline", "0 or more", o.BaselineRequests < 0}, {"slow-delay", "more than 0", o.SlowDelay <= 0},
				{"timeout", "more than 0", o.Timeout <= 0},
				{"burst-calls", "more than 0", cmd.Flags().Changed("burst-calls") && o.BurstCalls <= 0},
			} {
				if c.bad {
					return fmt.Errorf("--%s %s: want %s", c.flag, cmd.Flags().Lookup(c.flag).Value, c.want)
				}
			}
			if short {
				o = bench.Short(o.Traces)
			}
			o.Progress = cmd.ErrOrStderr()
			if verbose {
				log, err := lf.Logger(cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				o.Logger = log
			}
			if profile != "" && (o.CPU || o.BurstCalls > 0) {
				// The kanca measured is the child process.
				o.ChildProfile, profile = profile, ""
			}
			stopProfile, err := cpuprofile.Start(profile)
			if err != nil {
				return err
			}
			defer stopProfile()
			rep, err := bench.Run(cmd.Context(), o)
			if rep != nil && err == nil {
				fmt.Fprintln(cmd.OutOrStdout())
				rep.Print(cmd.OutOrStdout())
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Traces, "traces", "testdata/ari", "directory of recorded calls (<scenario>/events.ndjson)")
	f.IntVar(&o.Calls, "calls", 2000, "calls to send")
	f.Float64Var(&o.Rate, "rate", 200, "calls started per second; 0: as fast as kanca takes them")
	f.Float64Var(&o.Speedup, "speedup", 10, "send each call's frames this many times faster than recorded")
	f.IntVar(&o.Concurrent, "concurrent", 0, "also measure memory with this many calls live at once")
	f.BoolVar(&o.SlowHook, "slow-hook", false, "run the load again with a hook answering in --slow-delay beside each fast one")
	f.DurationVar(&o.SlowDelay, "slow-delay", 10*time.Second, "how long the slow hook takes to answer")
	f.BoolVar(&o.NATS, "nats", false, "only measure kanca on a three-node NATS JetStream cluster run in this process: deliveries/s and CPU per delivery with 1, 2 and 4 workers, and hangup-to-POST latency at --rate over three listeners, beside the single node's")
	f.BoolVar(&o.CPU, "cpu", false, "only measure CPU per call: --calls calls through a kanca process of its own (its rusage), beside a bare decode of the same frames and a process that only reads them at the same pace")
	var burst bool
	f.BoolVar(&burst, "slow-burst", false, "only measure a burst of --burst-calls calls to hooks answering in --slow-delay: how long until all are delivered")
	f.IntVar(&o.BurstCalls, "burst-calls", 100, "calls in the --slow-burst burst")
	f.StringVar(&o.Binary, "kanca", "", "the kanca binary --cpu and --slow-burst run (default: this one), e.g. a previous release")
	cmd.PreRun = func(*cobra.Command, []string) {
		if !burst {
			o.BurstCalls = 0
		}
	}
	f.IntVar(&o.BaselineRequests, "baseline", 0, "POSTs and inserts in the baselines (default: the run's deliveries)")
	f.DurationVar(&o.Timeout, "timeout", 2*time.Minute, "give up a phase after this long (plus the time its calls take to start)")
	f.BoolVar(&short, "short", false, "a run of a few seconds through every phase (overrides the sizes)")
	f.StringVar(&profile, "cpuprofile", "", "write a CPU profile (go tool pprof) of the whole run to this file; with --cpu or --slow-burst, of the kanca process measured")
	f.BoolVarP(&verbose, "verbose", "v", false, "print kanca's own logs")
	f.StringVar(&readARI, "read-ari", "", "read the events socket of the Asterisk at this URL and discard every frame (--cpu's bare reader)")
	_ = f.MarkHidden("read-ari")
	lf.Register(f)
	return cmd
}
