package clustertest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections on 127.0.0.1 to a server, and can cut
// them: a client cut off from NATS without the server going down.
type Proxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	blocked bool // new connections are refused, open ones are closed
	hung    bool // open connections stay open and pass nothing
	conns   []net.Conn
}

// NewProxy listens on a free port of 127.0.0.1 and forwards to target
// (host:port), until the test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("proxy: %v", err)
	}
	p := &Proxy{l: l, target: target}
	go p.accept()
	tb.Cleanup(func() {
		l.Close()
		p.closeAll()
	})
	return p
}

// URL is the proxy's NATS URL.
func (p *Proxy) URL() string { return "nats://" + p.l.Addr().String() }

// Block cuts every connection and refuses new ones until Unblock.
func (p *Proxy) Block() {
	p.mu.Lock()
	p.blocked = true
	p.mu.Unlock()
	p.closeAll()
}

// Hang keeps the connections open but passes nothing until Unblock: a
// peer that stopped answering (a process stopped, a network black hole).
func (p *Proxy) Hang() {
	p.mu.Lock()
	p.hung = true
	p.mu.Unlock()
}

// Unblock lets connections through again; a hung connection is closed,
// as a peer's timeout would.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	hung := p.hung
	p.blocked, p.hung = false, false
	p.mu.Unlock()
	if hung {
		p.closeAll()
	}
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	cs := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

func (p *Proxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		blocked := p.blocked || p.hung
		p.mu.Unlock()
		if blocked {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pipe(c, s)
		go p.pipe(s, c)
	}
}

// pipe copies until either side closes; while hung it drops what it
// reads (the connection is closed on Unblock).
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			hung := p.hung
			p.mu.Unlock()
			if !hung {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				return
			}
			return
		}
	}
}
