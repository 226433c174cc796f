package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// Procs is a NATS cluster whose servers are processes of their own (the
// natsnode program), so that a test can kill one with SIGKILL: nothing
// of it is flushed or closed, as when a machine loses power.
type Procs struct {
	bin     string
	ports   []int
	routes  string
	stores  []string
	cmds    []*exec.Cmd
	waits   []chan error
	tb      testing.TB
	stopped bool
}

// StartProcs builds natsnode into tb.TempDir() and runs n of them as one
// cluster on 127.0.0.1, each on its own store, killed at cleanup.
func StartProcs(tb testing.TB, n int) *Procs {
	tb.Helper()
	dir := tb.TempDir()
	bin := filepath.Join(dir, "natsnode")
	build := exec.Command("go", "build", "-o", bin, "github.com/kanca/kanca/cluster/clustertest/natsnode")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("build natsnode: %v\n%s", err, out)
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		tb.Fatal(err)
	}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[n+i]))
	}
	p := &Procs{bin: bin, ports: ports, routes: strings.Join(routes, ","), tb: tb,
		cmds: make([]*exec.Cmd, n), waits: make([]chan error, n)}
	for i := range n {
		p.stores = append(p.stores, filepath.Join(dir, fmt.Sprintf("nats-%d", i+1)))
	}
	tb.Cleanup(p.Close)
	for i := range n {
		p.start(i)
	}
	for i := range n {
		p.waitReady(i)
	}
	if err := probe(p.URL(), n); err != nil {
		tb.Fatal(err)
	}
	return p
}

// URL lists every server's client URL.
func (p *Procs) URL() string {
	var us []string
	for i := range p.cmds {
		us = append(us, p.ServerURL(i))
	}
	return strings.Join(us, ",")
}

// ServerURL is server i's client URL.
func (p *Procs) ServerURL(i int) string { return fmt.Sprintf("nats://127.0.0.1:%d", p.ports[i]) }

// Name is server i's name.
func (p *Procs) Name(i int) string { return fmt.Sprintf("kanca-test-%d", i+1) }

func (p *Procs) start(i int) {
	p.tb.Helper()
	cmd := exec.Command(p.bin, "-name", p.Name(i), "-port", fmt.Sprint(p.ports[i]),
		"-cluster-port", fmt.Sprint(p.ports[len(p.cmds)+i]), "-routes", p.routes, "-store", p.stores[i])
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		p.tb.Fatalf("start NATS server %s: %v", p.Name(i), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	p.cmds[i], p.waits[i] = cmd, done
}

// waitReady waits until server i takes client connections.
func (p *Procs) waitReady(i int) {
	p.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(p.ServerURL(i), nats.Timeout(time.Second))
		if err == nil {
			nc.Close()
			return
		}
		select {
		case werr := <-p.waits[i]:
			p.cmds[i] = nil
			p.tb.Fatalf("NATS server %s exited: %v", p.Name(i), werr)
		default:
		}
		if time.Now().After(deadline) {
			p.tb.Fatalf("NATS server %s not ready after 30 s: %v", p.Name(i), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill sends server i SIGKILL and waits until the process is gone.
func (p *Procs) Kill(i int) {
	p.tb.Helper()
	if err := p.cmds[i].Process.Signal(syscall.SIGKILL); err != nil {
		p.tb.Fatalf("kill NATS server %s: %v", p.Name(i), err)
	}
	<-p.waits[i]
	p.cmds[i] = nil // gone: Close has nothing to kill
}

// Restart starts server i again on its own ports and store, after Kill.
func (p *Procs) Restart(i int) {
	p.tb.Helper()
	p.start(i)
	p.waitReady(i)
}

// Close kills every server still running.
func (p *Procs) Close() {
	if p.stopped {
		return
	}
	p.stopped = true
	for i, c := range p.cmds {
		if c == nil {
			continue
		}
		_ = c.Process.Signal(syscall.SIGKILL)
		<-p.waits[i]
	}
}
