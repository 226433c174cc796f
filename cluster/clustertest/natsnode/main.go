// Command natsnode is one NATS server with JetStream, as its own process,
// for the fault tests that kill a server with SIGKILL: a server embedded
// in the test's own process cannot be killed that way. Test-only; not
// part of kanca.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	name := flag.String("name", "kanca-test-1", "server name, unique in the cluster")
	port := flag.Int("port", 4222, "client port on 127.0.0.1")
	clusterPort := flag.Int("cluster-port", 0, "cluster (route) port on 127.0.0.1; 0: no cluster")
	routes := flag.String("routes", "", "comma-separated route URLs of every server of the cluster (nats://127.0.0.1:PORT)")
	store := flag.String("store", "", "JetStream store directory (kept across restarts)")
	flag.Parse()
	if *store == "" {
		fail(fmt.Errorf("-store is required"))
	}
	o := &server.Options{ServerName: *name, Host: "127.0.0.1", Port: *port, JetStream: true, StoreDir: *store, NoLog: true}
	if *clusterPort != 0 {
		o.Cluster = server.ClusterOpts{Name: "kanca-test", Host: "127.0.0.1", Port: *clusterPort}
		for _, r := range strings.Split(*routes, ",") {
			u, err := url.Parse(strings.TrimSpace(r))
			if err != nil {
				fail(fmt.Errorf("-routes %q: %w", r, err))
			}
			o.Routes = append(o.Routes, u)
		}
	}
	ns, err := server.NewServer(o)
	if err != nil {
		fail(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		fail(fmt.Errorf("not ready after 30 s"))
	}
	ns.WaitForShutdown()
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "natsnode: %v\n", err)
	os.Exit(1)
}
