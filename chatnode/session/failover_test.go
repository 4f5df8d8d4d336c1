package session

import (
	"context"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
)

func TestFailoverOrder(t *testing.T) {
	servers := mqtt.NewClientOptions().AddBroker("tcp://b1:1").AddBroker("tcp://b2:1").AddBroker("tcp://b3:1").Servers
	for _, tt := range []struct {
		lost string
		want string
	}{
		{"", "tcp://b1:1 tcp://b2:1 tcp://b3:1"},
		{"tcp://b1:1", "tcp://b2:1 tcp://b3:1 tcp://b1:1"},
		{"tcp://b2:1", "tcp://b3:1 tcp://b1:1 tcp://b2:1"},
		{"tcp://b3:1", "tcp://b1:1 tcp://b2:1 tcp://b3:1"},
		{"tcp://elsewhere:1", "tcp://b1:1 tcp://b2:1 tcp://b3:1"},
	} {
		got := failoverOrder(servers, tt.lost)
		names := make([]string, len(got))
		for i, u := range got {
			names[i] = u.String()
		}
		if s := strings.Join(names, " "); s != tt.want {
			t.Errorf("after losing %q: %s, want %s", tt.lost, s, tt.want)
		}
	}
	if servers[0].String() != "tcp://b1:1" {
		t.Error("failoverOrder changed the configured list")
	}
}

// statuses returns the connection reports the node has seen, as
// "up BROKER" and "lost BROKER".
func (c *collector) statuses() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.status {
		switch {
		case s.Connected:
			out = append(out, "up "+s.Broker)
		case s.Err != nil:
			out = append(out, "lost "+s.Broker)
		}
	}
	return out
}

// waitStatuses waits until the node's connection reports are exactly want.
func waitStatuses(t *testing.T, n *testNode, want ...string) {
	t.Helper()
	n.got.waitFor(t, 20*time.Second, "connection reports "+strings.Join(want, ", "), func(c *collector) bool {
		c.mu.Unlock() // statuses takes the lock itself
		defer c.mu.Lock()
		return strings.Join(c.statuses(), ", ") == strings.Join(want, ", ")
	})
}

// TestFailoverToNextBroker: a node with a list of three brokers connects to
// the first; when it is lost the node moves to the next one in the list,
// reports both, and chats there; when that one is lost too it moves to the
// third, not back to the dead first one.
func TestFailoverToNextBroker(t *testing.T) {
	b1 := brokertest.Start(t, brokertest.Config(t))
	b2 := brokertest.Start(t, brokertest.Config(t))
	b3 := brokertest.Start(t, brokertest.Config(t))
	alice := startNode(t, nodeConfig(t, b1.URL+","+b2.URL+","+b3.URL, "alice", "lobby"))
	if got := alice.broker(); got != b1.URL {
		t.Fatalf("connected to %q, want the first broker %s", got, b1.URL)
	}
	waitStatuses(t, alice, "up "+b1.URL)

	b1.Close()
	waitStatuses(t, alice, "up "+b1.URL, "lost "+b1.URL, "up "+b2.URL)
	bob := startNode(t, nodeConfig(t, b2.URL, "bob", "lobby"))
	waitOnline(t, "lobby", alice, bob)
	send(t, alice, "lobby", 5)
	bob.got.waitFor(t, 10*time.Second, "alice's messages on the second broker", func(c *collector) bool { return len(c.msgs) == 5 })
	checkComplete(t, bob, map[[2]string]int{{"alice", "lobby"}: 5})

	b2.Close()
	waitStatuses(t, alice, "up "+b1.URL, "lost "+b1.URL, "up "+b2.URL, "lost "+b2.URL, "up "+b3.URL)
	if got := alice.broker(); got != b3.URL {
		t.Fatalf("connected to %q, want %s", got, b3.URL)
	}
}

// silentHost forwards connections to a broker until die: then it drops them
// and answers no more, keeping new connections open without a byte, as a
// host that vanished from the network does (no refusal, only a timeout).
// freeze keeps the connections but drops what crosses them from then on:
// a broker that is connected and acknowledges nothing.
type silentHost struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn // guarded by mu
	dead   bool       // guarded by mu
	frozen bool       // guarded by mu
}

func newSilentHost(t *testing.T, target string) *silentHost {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &silentHost{ln: ln, target: target}
	t.Cleanup(func() {
		if err := ln.Close(); err != nil {
			t.Logf("silent host close: %v", err)
		}
		h.closeAll()
	})
	go h.serve()
	return h
}

func (h *silentHost) url() string { return "tcp://" + h.ln.Addr().String() }

func (h *silentHost) serve() {
	for {
		c, err := h.ln.Accept()
		if err != nil {
			return
		}
		h.mu.Lock()
		h.conns = append(h.conns, c)
		dead := h.dead
		h.mu.Unlock()
		if dead {
			continue // held open, never answered
		}
		up, err := net.Dial("tcp", h.target)
		if err != nil {
			closeQuietly(c)
			continue
		}
		h.mu.Lock()
		h.conns = append(h.conns, up)
		h.mu.Unlock()
		go h.relay(c, up)
		go h.relay(up, c)
	}
}

// relay copies src to dst, dropping what it reads while frozen.
func (h *silentHost) relay(dst, src net.Conn) {
	defer closeQuietly(dst)
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		h.mu.Lock()
		frozen := h.frozen
		h.mu.Unlock()
		if frozen {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// freeze keeps every connection open and drops what crosses it.
func (h *silentHost) freeze() {
	h.mu.Lock()
	h.frozen = true
	h.mu.Unlock()
}

// die drops every forwarded connection; later ones are held silent.
func (h *silentHost) die() {
	h.mu.Lock()
	h.dead = true
	h.mu.Unlock()
	h.closeAll()
}

func (h *silentHost) closeAll() {
	h.mu.Lock()
	conns := h.conns
	h.conns = nil
	h.mu.Unlock()
	for _, c := range conns {
		closeQuietly(c)
	}
}

// TestFailoverSkipsSilentBroker: when the lost broker's host goes silent
// (connections neither refused nor answered), the node does not dial it
// first again and wait out its connect timeout: it is on the next broker
// well within that timeout.
func TestFailoverSkipsSilentBroker(t *testing.T) {
	b1 := brokertest.Start(t, brokertest.Config(t))
	b2 := brokertest.Start(t, brokertest.Config(t))
	host := newSilentHost(t, b1.Addr)
	cfg := nodeConfig(t, host.url()+","+b2.URL, "alice", "lobby")
	cfg.ConnectTimeout = time.Minute // dialing the silent host first would take this long
	alice := startNode(t, cfg)
	waitStatuses(t, alice, "up "+host.url())
	lost := time.Now()
	host.die()
	waitStatuses(t, alice, "up "+host.url(), "lost "+host.url(), "up "+b2.URL)
	if d := time.Since(lost); d > 15*time.Second {
		t.Errorf("failover took %s", d)
	}
	if u, err := url.Parse(alice.broker()); err != nil || u.Host != b2.Addr {
		t.Errorf("on broker %q, want %s", alice.broker(), b2.URL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent, err := alice.Send(ctx, Outgoing{Room: "lobby", Body: "after failover"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-sent.Done:
		if sent.Err != nil {
			t.Fatal(sent.Err)
		}
	case <-ctx.Done():
		t.Fatal("no PUBACK from the second broker")
	}
}

// TestFailoverFromStalledBroker: a broker that stays connected but
// acknowledges nothing (a minority broker) is left once a publish has
// waited stall_failover for its PUBACK; the node moves to the next broker,
// which acknowledges the publish paho sends again. Keep-alive alone would
// take a minute to notice.
func TestFailoverFromStalledBroker(t *testing.T) {
	b1 := brokertest.Start(t, brokertest.Config(t))
	b2 := brokertest.Start(t, brokertest.Config(t))
	host := newSilentHost(t, b1.Addr)
	cfg := nodeConfig(t, host.url()+","+b2.URL, "alice", "lobby")
	cfg.KeepAlive = time.Minute
	cfg.StallFailover = 500 * time.Millisecond
	alice := startNode(t, cfg)
	host.freeze()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	sent, err := alice.Send(ctx, Outgoing{Room: "lobby", Body: "on a stalled broker"})
	if err != nil {
		t.Fatal(err)
	}
	waitStatuses(t, alice, "up "+host.url(), "lost "+host.url(), "up "+b2.URL)
	select {
	case <-sent.Done:
		if sent.Err != nil {
			t.Fatal(sent.Err)
		}
	case <-ctx.Done():
		t.Fatal("the publish was not acknowledged after the move")
	}
	alice.got.waitFor(t, 10*time.Second, "its own message back from the second broker", func(c *collector) bool { return len(c.msgs) == 1 })
}
