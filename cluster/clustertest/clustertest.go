// Package clustertest runs real NATS servers with JetStream in the
// process, on loopback and free ports: one, or a cluster of several, for
// the tests, the demo and benchmarks of kanca on a cluster.
package clustertest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is one NATS server of a test.
type Server struct {
	*server.Server
	opts *server.Options
}

// URL is the client URL of the server.
func (s *Server) URL() string { return s.ClientURL() }

// Restart starts the server again after Shutdown, on the same ports and
// store: a node coming back.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	ns, err := server.NewServer(s.opts)
	if err != nil {
		tb.Fatalf("restart NATS server %s: %v", s.opts.ServerName, err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(20 * time.Second) {
		tb.Fatalf("NATS server %s not ready after restart", s.opts.ServerName)
	}
	s.Server = ns
}

// Cluster is the servers of a test.
type Cluster struct {
	Servers []*Server
}

// URL lists every server's client URL, for a client to try them in turn.
func (c *Cluster) URL() string {
	var us []string
	for _, s := range c.Servers {
		us = append(us, fmt.Sprintf("nats://%s:%d", s.opts.Host, s.opts.Port))
	}
	return strings.Join(us, ",")
}

// Start runs n servers with JetStream on 127.0.0.1 (n > 1: one cluster,
// each routed to the others), stores under tb.TempDir(), stopped at
// cleanup.
func Start(tb testing.TB, n int) *Cluster {
	tb.Helper()
	c, err := StartIn(n, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	return c
}

// StartIn is Start outside a test (benchmarks, the demo): the stores go
// under dir, and Close stops the servers.
func StartIn(n int, dir string) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var routes []*url.URL
	if n > 1 {
		for i := range n {
			routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[n+i])})
		}
	}
	c := &Cluster{}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("kanca-test-%d", i+1),
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   filepath.Join(dir, fmt.Sprintf("nats-%d", i+1)),
			NoLog:      true,
			NoSigs:     true,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "kanca-test", Host: "127.0.0.1", Port: ports[n+i]}
			o.Routes = routes
		}
		ns, err := server.NewServer(o)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("NATS server %d: %w", i+1, err)
		}
		go ns.Start()
		c.Servers = append(c.Servers, &Server{Server: ns, opts: o})
	}
	for _, s := range c.Servers {
		if !s.ReadyForConnections(20 * time.Second) {
			c.Close()
			return nil, fmt.Errorf("NATS server %s not ready", s.opts.ServerName)
		}
	}
	if n > 1 {
		if err := c.waitForLeader(); err != nil {
			c.Close()
			return nil, err
		}
		if err := probe(c.URL(), n); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// probe makes a replicated stream and waits until it answers from every
// server: a cluster whose meta leader is elected can still be a moment
// away from electing a new stream's own.
func probe(urls string, n int) error {
	nc, err := nats.Connect(urls)
	if err != nil {
		return fmt.Errorf("probe NATS cluster: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("probe NATS cluster: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "KANCA_TEST_PROBE", Subjects: []string{"kanca-test-probe"},
			Replicas: n, Storage: jetstream.MemoryStorage})
		if err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(ctx); err == nil && info.Cluster != nil && info.Cluster.Leader != "" &&
				len(info.Cluster.Replicas) == n-1 {
				current := true
				for _, r := range info.Cluster.Replicas {
					current = current && r.Current
				}
				if current {
					err = js.DeleteStream(ctx, "KANCA_TEST_PROBE")
					cancel()
					return err
				}
			}
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS cluster: a replicated stream has no leader after 60 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close stops every server.
func (c *Cluster) Close() {
	for _, s := range c.Servers {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

// WaitForLeader waits until the running servers agree on a JetStream
// meta leader: before that, creating a stream or a bucket times out.
func (c *Cluster) WaitForLeader(tb testing.TB) {
	tb.Helper()
	if err := c.waitForLeader(); err != nil {
		tb.Fatal(err)
	}
}

func (c *Cluster) waitForLeader() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader, current := false, true
		for _, s := range c.Servers {
			if !s.Running() {
				continue
			}
			leader = leader || s.JetStreamIsLeader()
			current = current && s.JetStreamIsCurrent()
		}
		if leader && current {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("NATS cluster has no JetStream meta leader after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePorts finds n ports free on 127.0.0.1 now.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	var ports []int
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
