package broker_test

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
)

// dialFrom opens a TCP connection to addr from the loopback address local
// (127.0.0.2 is a different client IP on Linux), closed when the test ends.
func dialFrom(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: wait, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Error(err)
		}
	})
	return c
}

// closedByBroker waits up to wait for the broker to close c, and fails if
// it does not or if c receives data first.
func closedByBroker(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	n, err := c.Read(make([]byte, 16))
	if n > 0 || (!errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET)) {
		t.Fatalf("connection from %s: read %d bytes, %v; want it closed by the broker", c.LocalAddr(), n, err)
	}
}

// connected sends a clean-session MQTT 3.1.1 CONNECT on c and checks the
// CONNACK accepts it.
func connected(t *testing.T, c net.Conn, id string) {
	t.Helper()
	rc := rawFrom(c)
	rc.write(t, connectPacket(4, id, nil, nil))
	if typ, body := rc.read(t); typ != 0x20 || body[1] != 0 {
		t.Fatalf("CONNACK: type %#x body %v", typ, body)
	}
}

// Connections that never complete CONNECT are closed after
// limits.connect_timeout, counted and logged with their address; a client
// that did CONNECT in time is not affected.
func TestConnectTimeoutClosesSilentConnections(t *testing.T) {
	const timeout = 300 * time.Millisecond
	cfg := brokertest.Config(t)
	cfg.Limits.ConnectTimeout = timeout
	b, lines := loggedBroker(t, cfg)
	good := dialRawSession(t, b.Addr, "good", true) // keep-alive off: no deadline after CONNECT

	start := time.Now()
	idle := map[string][]byte{
		"nothing":        nil,
		"half a CONNECT": connectPacket(4, "slow", nil, nil)[:6],
	}
	conns := map[string]net.Conn{}
	for name, send := range idle {
		c := dialFrom(t, "127.0.0.1", b.Addr)
		if _, err := c.Write(send); err != nil {
			t.Fatal(err)
		}
		conns[name] = c
	}
	for name, c := range conns {
		closedByBroker(t, c)
		if el := time.Since(start); el < timeout {
			t.Errorf("%s: closed after %v, before connect_timeout %v", name, el, timeout)
		}
		lines.Wait(t, wait, func(m map[string]any) bool {
			return m["event"] == "connect_timeout" && m["remote"] == c.LocalAddr().String() && m["connect_timeout"] == timeout.String()
		})
	}
	good.write(t, []byte{0xc0, 0}) // PINGREQ
	if typ, _ := good.read(t); typ != 0xd0 {
		t.Errorf("the connected client got %#x, want PINGRESP", typ)
	}
	if st := b.Stats(t).Listener; st.ConnectTimeouts != int64(len(idle)) || st.OpenConnections != 1 {
		t.Errorf("connect_timeouts %d, open_connections %d; want %d, 1", st.ConnectTimeouts, st.OpenConnections, len(idle))
	}
}

// Connections over limits.max_connections or limits.max_connections_per_ip
// are closed at accept, counted by limit and logged.
func TestConnectionLimits(t *testing.T) {
	for _, tc := range []struct {
		name         string
		max, perIP   int
		refusedLocal string // the address the refused connection comes from
	}{
		{"per IP", 0, 2, "127.0.0.1"},
		{"per listener", 2, 0, "127.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := brokertest.Config(t)
			cfg.Limits.MaxConnections, cfg.Limits.MaxConnectionsPerIP = tc.max, tc.perIP
			b, lines := loggedBroker(t, cfg)
			for i, id := range []string{"c1", "c2"} {
				connected(t, dialFrom(t, "127.0.0.1", b.Addr), id)
				if i == 0 && tc.perIP > 0 {
					// Another address is not held back by 127.0.0.1's limit.
					connected(t, dialFrom(t, "127.0.0.2", b.Addr), "other-ip")
				}
			}
			refused := dialFrom(t, tc.refusedLocal, b.Addr)
			closedByBroker(t, refused)
			limit := map[bool]string{true: "max_connections_per_ip", false: "max_connections"}[tc.perIP > 0]
			lines.Wait(t, wait, func(m map[string]any) bool {
				return m["event"] == "connection_refused" && m["limit"] == limit && m["remote"] == refused.LocalAddr().String()
			})
			st := b.Stats(t).Listener
			if st.Refused[limit] != 1 || st.Refused["max_connections"]+st.Refused["max_connections_per_ip"] != 1 {
				t.Errorf("refused = %v, want one for %s", st.Refused, limit)
			}
		})
	}
}

// A flood of refused connections is counted in full but logged in a
// bounded number of lines, the later ones saying how many were held back.
func TestRefusedConnectionsLogIsRateLimited(t *testing.T) {
	const flood = 60
	cfg := brokertest.Config(t)
	cfg.Limits.MaxConnections = 1
	b, lines := loggedBroker(t, cfg)
	connected(t, dialFrom(t, "127.0.0.1", b.Addr), "holder")
	start := time.Now()
	for range flood {
		closedByBroker(t, dialFrom(t, "127.0.0.1", b.Addr))
	}
	elapsed := time.Since(start)
	if n := b.Stats(t).Listener.Refused["max_connections"]; n != flood {
		t.Errorf("refused %d, want %d", n, flood)
	}
	logged := 0
	for _, m := range lines.All() {
		if m["event"] == "connection_refused" {
			logged++
		}
	}
	if most := 10 + int(elapsed/time.Second) + 1; logged > most || logged == 0 {
		t.Errorf("%d connection_refused lines for %d refusals in %v, want 1..%d", logged, flood, elapsed, most)
	}
}
