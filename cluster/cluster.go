// Package cluster is kanca on a NATS JetStream cluster, for many PBXs and
// one delivery service: the stream listeners forward call events to, the
// hooks and the delivery log the workers share (key-value buckets), the
// partition leases that keep a call's deliveries on one worker at a time,
// the forwarder (listener side) and the worker (delivery side).
//
// The single-machine kanca never imports it: without --nats nothing here
// runs and the SQLite store does everything.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names in the cluster. They are kanca's alone: a NATS account shared with
// other applications keeps them apart by these.
const (
	// StreamName holds the call events of every listener, on subjects
	// partitioned by call (SubjectPrefix + partition).
	StreamName    = "KANCA_EVENTS"
	SubjectPrefix = "kanca.events."
	// HooksBucket holds the hooks: key = id, value = the hook as JSON;
	// key "next" the last id given.
	HooksBucket = "kanca_hooks"
	// LogBucket is the delivery log: key = delivery id, value = the
	// delivery with its attempts. Kept LogRetention after its last change.
	LogBucket = "kanca_deliveries"
	// LeaseBucket holds the partition leases ("p.N") and the live
	// workers ("w.ID"); an entry not renewed within LeaseTTL expires.
	LeaseBucket = "kanca_leases"
)

// Partitions is how many subjects the stream splits calls over: the unit
// of work a worker leases. Fixed, because listeners and workers must agree
// on it without talking; 32 spreads well over a few dozen workers.
const Partitions = 32

// LogRetention is how long the delivery log keeps a delivery after its
// last change: the single-machine store keeps attempts as long.
const LogRetention = 30 * 24 * time.Hour

// Partition is the partition of a call: all its events go to one subject,
// so one worker at a time reads them, in order.
func Partition(callID string) int {
	h := fnv.New32a()
	h.Write([]byte(callID))
	return int(h.Sum32() % Partitions)
}

// Subject is the stream subject of partition p.
func Subject(p int) string { return SubjectPrefix + strconv.Itoa(p) }

// Options say how to reach the cluster, as the nats.go client takes them.
type Options struct {
	URL     string // nats://host:4222, comma-separated for several seeds
	Creds   string // a .creds file (JWT and NKey seed)
	NKey    string // an NKey seed file
	TLSCA   string // CA file to verify the servers by
	TLSCert string // client certificate file (mutual TLS), with TLSKey
	TLSKey  string
	Name    string // the connection's name in the servers' monitoring
	// Replicas for the stream and buckets kanca creates; 0: 3 on a
	// clustered server, 1 on a single one. Existing ones are left as
	// they are.
	Replicas int
	// Once makes a command fail when no server answers now, instead of
	// waiting for one as a daemon does.
	Once bool
	// OnlyGiven keeps the client to the URLs given, never the servers the
	// cluster announces (a listener that reaches NATS through a proxy or
	// an address translation).
	OnlyGiven bool
	Logger    *slog.Logger
}

// Conn is a connection to the cluster.
type Conn struct {
	NC   *nats.Conn
	JS   jetstream.JetStream
	opts Options
	log  *slog.Logger
}

// Connect connects to the cluster. It returns at once even when no server
// answers yet (a listener must start while NATS is down) and reconnects
// for ever.
func Connect(o Options) (*Conn, error) {
	if o.URL == "" {
		return nil, errors.New("connect to NATS: no URL (--nats or KANCA_NATS_URL)")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	log := o.Logger
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(!o.Once),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("NATS connection back", "server", nc.ConnectedUrlRedacted()) }),
		// The first connection, when it came only after retries.
		nats.ConnectHandler(func(nc *nats.Conn) { log.Info("NATS connected", "server", nc.ConnectedUrlRedacted()) }),
		// Without a handler the client prints asynchronous errors itself.
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { log.Debug("NATS", "err", err) }),
	}
	if o.OnlyGiven {
		opts = append(opts, nats.IgnoreDiscoveredServers())
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKey != "" {
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w", o.NKey, err)
		}
		opts = append(opts, opt)
	}
	if o.TLSCA != "" {
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return nil, errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	if o.TLSCert != "" {
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	nc, err := nats.Connect(o.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", o.URL, err)
	}
	// A cluster electing a leader, or on a loaded machine, can take more
	// than the client's 5 s default to create a stream or a bucket.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(15*time.Second))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("connect to NATS %s: %w", o.URL, err)
	}
	return &Conn{NC: nc, JS: js, opts: o, log: log}, nil
}

// Close drains nothing: what was not acknowledged is kept by its owner.
func (c *Conn) Close() { c.NC.Close() }

// replicas is how many copies what kanca creates gets.
func (c *Conn) replicas() int {
	if c.opts.Replicas > 0 {
		return c.opts.Replicas
	}
	if c.NC.ConnectedClusterName() != "" {
		return 3
	}
	return 1
}

// Stream returns the events stream, creating it if it is missing. Events
// leave it once every hook has them (the partition's owner purges them),
// or after LogRetention at the latest.
func (c *Conn) Stream(ctx context.Context) (jetstream.Stream, error) {
	cfg := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "kanca call events, partitioned by call",
		Subjects:    []string{SubjectPrefix + "*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    c.replicas(),
		MaxAge:      LogRetention,
		// A listener publishes again what it did not see acknowledged,
		// after an outage of minutes: an hour of ids keeps those repeats
		// out of the stream.
		Duplicates: time.Hour,
	}
	s, err := findOrMake(ctx, found[jetstream.Stream]{
		find:   func(ctx context.Context) (jetstream.Stream, error) { return c.JS.Stream(ctx, StreamName) },
		make:   func(ctx context.Context) (jetstream.Stream, error) { return c.JS.CreateStream(ctx, cfg) },
		ready:  func(ctx context.Context, s jetstream.Stream) error { _, err := s.Info(ctx); return err },
		absent: jetstream.ErrStreamNotFound, taken: jetstream.ErrStreamNameAlreadyInUse,
	})
	if err != nil {
		return nil, c.wrap(fmt.Sprintf("events stream (replicas %d)", c.replicas()), err)
	}
	return s, nil
}

// bucket returns a key-value bucket, creating it if it is missing.
func (c *Conn) bucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = c.replicas()
	cfg.Storage = jetstream.FileStorage
	kv, err := findOrMake(ctx, found[jetstream.KeyValue]{
		find:   func(ctx context.Context) (jetstream.KeyValue, error) { return c.JS.KeyValue(ctx, cfg.Bucket) },
		make:   func(ctx context.Context) (jetstream.KeyValue, error) { return c.JS.CreateKeyValue(ctx, cfg) },
		ready:  func(ctx context.Context, kv jetstream.KeyValue) error { _, err := kv.Status(ctx); return err },
		absent: jetstream.ErrBucketNotFound, taken: jetstream.ErrBucketExists,
	})
	if err != nil {
		return nil, c.wrap(fmt.Sprintf("bucket %s (replicas %d)", cfg.Bucket, cfg.Replicas), err)
	}
	return kv, nil
}

// found is how to find a stream or bucket, make it, and know it answers;
// absent is find's error when there is none, taken make's when another
// made it meanwhile (or with another config: the next find tells).
type found[T any] struct {
	find, make    func(context.Context) (T, error)
	ready         func(context.Context, T) error
	absent, taken error
}

// findOrMake finds or makes what f names, asking again while the cluster
// does not answer; a stream or bucket just made answers once its replicas
// chose a leader.
func findOrMake[T any](ctx context.Context, f found[T]) (T, error) {
	var v T
	err := untilAnswered(ctx, func(ctx context.Context) (err error) {
		v, err = f.find(ctx)
		if !errors.Is(err, f.absent) {
			return err
		}
		if v, err = f.make(ctx); errors.Is(err, f.taken) {
			return errAgain
		}
		if err != nil {
			return err
		}
		if err = f.ready(ctx, v); errors.Is(err, f.absent) {
			// Made, but the server that answered has not applied it yet
			// (a cluster's meta leader assigns it first): ask again.
			return errAgain
		}
		return err
	})
	return v, err
}

// wrap names what failed, and says so when no server was reached at all:
// a client that never connected hears only timeouts.
func (c *Conn) wrap(what string, err error) error {
	if !c.NC.IsConnected() {
		return fmt.Errorf("%s: no NATS server reached at %s: %w", what, c.opts.URL, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// errNoSuitablePeers is the server's "no suitable peers for placement"
// (JSClusterNoPeersErr), which the client names no constant for.
const errNoSuitablePeers jetstream.ErrorCode = 10005

// errAgain asks untilAnswered for another try.
var errAgain = errors.New("made by another meanwhile")

// A try at the cluster waits askTimeout for its answer, and all tries
// together give up after patience.
const (
	askTimeout = 3 * time.Second
	patience   = 45 * time.Second
)

// untilAnswered asks again while the cluster does not answer. A cluster
// just started or electing a leader drops some requests without a word
// (only a new try is ever answered), has no leader for a stream just made
// for a moment, or refuses a placement until it has seen its peers; a
// single try that waited for its answer, however long, would fail there.
func untilAnswered(ctx context.Context, ask func(context.Context) error) error {
	deadline := time.Now().Add(patience)
	for {
		actx, cancel := context.WithTimeout(ctx, askTimeout)
		err := ask(actx)
		cancel()
		var api *jetstream.APIError
		again := errors.Is(err, errAgain) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
			(errors.As(err, &api) && api.ErrorCode == errNoSuitablePeers)
		switch {
		case err == nil || !again:
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline) && (errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled)):
			return fmt.Errorf("no JetStream answered in %s (is it enabled on the servers?): %w", patience, err)
		case time.Now().After(deadline):
			return fmt.Errorf("the cluster did not answer in %s: %w", patience, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
