package session

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy is a TCP forwarder the test controls: cut drops every connection
// without an MQTT DISCONNECT (like a dead node or network), and while it is
// down new connections are refused, so the node stays away.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	down   bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	t.Cleanup(func() {
		if err := ln.Close(); err != nil {
			t.Logf("proxy close: %v", err)
		}
		p.cut(false)
	})
	go p.serve()
	return p
}

func (p *proxy) url() string { return "tcp://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.down {
			p.mu.Unlock()
			closeQuietly(c)
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			closeQuietly(c)
			continue
		}
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go pipe(c, up)
		go pipe(up, c)
	}
}

func pipe(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err != nil {
		closeQuietly(dst)
		return
	}
	closeQuietly(dst)
}

func closeQuietly(c net.Conn) {
	if err := c.Close(); err != nil {
		return // already closed by the other direction
	}
}

// cut closes every forwarded connection; with stayDown, refuses new ones
// until up is called.
func (p *proxy) cut(stayDown bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = stayDown
	for _, c := range p.conns {
		closeQuietly(c)
	}
	p.conns = nil
}

func (p *proxy) up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
