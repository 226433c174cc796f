// Package clustertest runs real NATS servers with JetStream in the
// process, on loopback and free ports: one, or a cluster of several, for
// the tests, the demo and benchmarks of kanca on a cluster.
package clustertest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
	ports := freePorts(tb, 2*n)
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
			StoreDir:   tb.TempDir(),
			NoLog:      true,
			NoSigs:     true,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "kanca-test", Host: "127.0.0.1", Port: ports[n+i]}
			o.Routes = routes
		}
		ns, err := server.NewServer(o)
		if err != nil {
			tb.Fatalf("NATS server %d: %v", i+1, err)
		}
		go ns.Start()
		s := &Server{Server: ns, opts: o}
		c.Servers = append(c.Servers, s)
		tb.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
	}
	for _, s := range c.Servers {
		if !s.ReadyForConnections(20 * time.Second) {
			tb.Fatalf("NATS server %s not ready", s.opts.ServerName)
		}
	}
	if n > 1 {
		c.WaitForLeader(tb)
	}
	return c
}

// WaitForLeader waits until the running servers agree on a JetStream
// meta leader: before that, creating a stream or a bucket times out.
func (c *Cluster) WaitForLeader(tb testing.TB) {
	tb.Helper()
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
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("NATS cluster has no JetStream meta leader after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePorts finds n ports free on 127.0.0.1 now.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}
