// Package delivercmd is `kanca deliver`: a delivery worker of a NATS
// JetStream cluster.
package delivercmd

import (
	"errors"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cmd/kanca/logflags"
	"github.com/kanca/kanca/cmd/kanca/natsflags"
	"github.com/kanca/kanca/cmd/kanca/netflags"
	"github.com/kanca/kanca/cmd/kanca/trackerflags"
	"github.com/kanca/kanca/hooks"
	"github.com/kanca/kanca/version"
)

// New returns the deliver command.
func New() *cobra.Command {
	var (
		nats  natsflags.Flags
		nf    netflags.Flags
		lf    logflags.Flags
		tf    trackerflags.Flags
		id    string
		lease time.Duration
	)
	cmd := &cobra.Command{
		Use:   "deliver",
		Short: "Deliver the call events of a NATS cluster's listeners to its hooks (a worker)",
		Long: `deliver is a delivery worker of kanca on a NATS JetStream cluster: any
number of them, anywhere, send the call events that the listeners (kanca
run --nats, one beside each PBX) forward, to the hooks kept in the
cluster (kanca hooks --nats), with the single-machine retry policy,
signatures, formats, templates and network policy.

Calls are spread over the workers by partition (` + strconv.Itoa(cluster.Partitions) + ` of them, by call
uuid): each worker leases about its share, renews the lease while it
runs, and sends a call's events to each hook in order, the next only
once the previous one was answered or given up. A worker that stops
gives its partitions back after its requests in flight (SIGTERM, up to
10 s); one that dies or hangs loses them after --lease (10 s), and
another worker goes on where it stopped: what was answered is in the
cluster's delivery log and is not sent again, a request cut off is sent
again with the same delivery id.

The delivery log (kanca deliveries --nats) keeps each delivery and its
attempts for 30 days after its last change.`,
		Example: `  kanca deliver --nats nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222
  KANCA_NATS_URL=nats://nats:4222 kanca deliver --nats-creds /etc/kanca/nats.creds --tz Europe/Istanbul`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !nats.Set() {
				return errors.New("deliver needs a NATS cluster: --nats URL or KANCA_NATS_URL")
			}
			cmd.SilenceUsage = true
			log, err := lf.Logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			v := version.Get()
			log.Info("kanca deliver starting", "version", v.Version, "revision", v.Revision, "go", v.Go)
			fo, err := tf.Format()
			if err != nil {
				return err
			}
			policy, err := nf.Policy(log)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			conn, err := nats.Connect("kanca deliver", log)
			if err != nil {
				return err
			}
			defer conn.Close()
			w, err := cluster.NewWorker(ctx, conn, cluster.WorkerOptions{ID: id, LeaseTTL: lease, NetPolicy: policy,
				Encoding: hooks.Encoding{Location: fo.Location, NumbersAsStrings: fo.NumbersAsStrings}, Logger: log})
			if err != nil {
				return err
			}
			log.Info("kanca delivering", "worker", w.ID())
			err = w.Run(ctx)
			st := w.Stats()
			log.Info("kanca deliver stopped", "delivered", st.Delivered, "failed", st.Failed, "dead", st.Dead)
			return err
		},
	}
	fs := cmd.Flags()
	nats.Register(fs)
	nf.Register(fs)
	lf.Register(fs)
	tf.RegisterFormat(fs)
	fs.StringVar(&id, "id", "", "this worker's name in the cluster's leases (default host-pid-random)")
	fs.DurationVar(&lease, "lease", 10*time.Second, "how long a partition stays a worker's without renewal: how long a dead worker's calls wait for another; set by the first worker of a cluster (its leases bucket keeps it), the others follow it")
	return cmd
}
