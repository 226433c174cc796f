// Package natsflags is --nats and its companions, shared by the commands
// that can work on a NATS JetStream cluster (run, deliver, hooks,
// deliveries) instead of the local database.
package natsflags

import (
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/kanca/kanca/cluster"
	"github.com/kanca/kanca/cmd/kanca/envdefault"
)

// Flags are the connection options as the nats.go client takes them.
type Flags struct {
	o cluster.Options
}

// Register adds the flags to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.o.URL, "nats", envdefault.String("KANCA_NATS_URL", ""),
		"work on this NATS JetStream cluster instead of the local database alone, e.g. nats://10.0.0.1:4222,nats://10.0.0.2:4222 (see README, Many PBXs) [KANCA_NATS_URL]")
	fs.StringVar(&f.o.Creds, "nats-creds", envdefault.String("KANCA_NATS_CREDS", ""), "NATS credentials file (user JWT and NKey seed) [KANCA_NATS_CREDS]")
	fs.StringVar(&f.o.NKey, "nats-nkey", envdefault.String("KANCA_NATS_NKEY", ""), "NATS NKey seed file [KANCA_NATS_NKEY]")
	fs.StringVar(&f.o.TLSCA, "nats-tls-ca", envdefault.String("KANCA_NATS_TLS_CA", ""), "CA file to verify the NATS servers by [KANCA_NATS_TLS_CA]")
	fs.StringVar(&f.o.TLSCert, "nats-tls-cert", envdefault.String("KANCA_NATS_TLS_CERT", ""), "client certificate for NATS mutual TLS, with --nats-tls-key [KANCA_NATS_TLS_CERT]")
	fs.StringVar(&f.o.TLSKey, "nats-tls-key", envdefault.String("KANCA_NATS_TLS_KEY", ""), "the client certificate's key file [KANCA_NATS_TLS_KEY]")
	fs.IntVar(&f.o.Replicas, "nats-replicas", envdefault.Int("KANCA_NATS_REPLICAS", 0),
		"copies of the stream and buckets kanca creates (default 3 on a NATS cluster, 1 on a single server) [KANCA_NATS_REPLICAS]")
}

// Set reports whether --nats was given.
func (f *Flags) Set() bool { return f.o.URL != "" }

// Connect connects as name, a daemon: it waits for the cluster.
func (f *Flags) Connect(name string, log *slog.Logger) (*cluster.Conn, error) {
	o := f.o
	o.Name, o.Logger = name, log
	return cluster.Connect(o)
}

// ConnectOnce connects as name, a command: it fails when no server
// answers now.
func (f *Flags) ConnectOnce(name string) (*cluster.Conn, error) {
	o := f.o
	o.Name, o.Once = name, true
	o.Logger = slog.New(slog.DiscardHandler)
	return cluster.Connect(o)
}
