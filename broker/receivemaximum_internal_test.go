package broker

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// rmPublish is a QoS 1 PUBLISH (MQTT 5, no properties) with id.
func rmPublish(id uint16, payload string) []byte {
	body := []byte{0, 1, 't', byte(id >> 8), byte(id), 0}
	body = append(body, payload...)
	return append([]byte{0x32, byte(len(body))}, body...)
}

// connect5 is an MQTT 5 CONNECT with Receive Maximum max.
func connect5(max uint16) []byte {
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 3, 0x21, byte(max >> 8), byte(max), 0, 1, 'c'}
	return append([]byte{0x10, byte(len(body))}, body...)
}

// rmPair returns a clientConn, admitted as the TCP listener admits one,
// over one end of a pipe whose other end's bytes arrive on the returned
// channel, one Write at a time.
func rmPair(t *testing.T) (*clientConn, net.Conn, <-chan []byte) {
	t.Helper()
	server, client := net.Pipe()
	c, ok := roomyLimiter().admit(server).(*clientConn)
	if !ok {
		t.Fatal("the limiter did not admit a clientConn")
	}
	t.Cleanup(func() { _ = c.Close(); _ = client.Close() })
	got := make(chan []byte, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := client.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	return c, client, got
}

// feedRead makes the conn read b as if the client had sent it.
func feedRead(t *testing.T, c *clientConn, client net.Conn, b []byte) {
	t.Helper()
	go func() { _, _ = client.Write(b) }()
	buf := make([]byte, len(b))
	n := 0
	for n < len(b) {
		m, err := c.Read(buf[n:])
		if err != nil {
			t.Fatal(err)
		}
		n += m
	}
}

func recv(t *testing.T, got <-chan []byte) []byte {
	t.Helper()
	select {
	case b := <-got:
		return b
	case <-time.After(5 * time.Second):
		t.Fatal("nothing written to the client")
		return nil
	}
}

// mustWrite writes p to c, which reports all of it written.
func mustWrite(t *testing.T, c *clientConn, p []byte) {
	t.Helper()
	if n, err := c.Write(p); n != len(p) || err != nil {
		t.Fatalf("Write = %d, %v; want %d, nil", n, err, len(p))
	}
}

// With Receive Maximum 2, a buffer of four QoS 1 PUBLISHes sends two; each
// PUBACK releases the next, in order; QoS 0 and other packets pass.
func TestReceiveMaximumConnHoldsAndReleases(t *testing.T) {
	c, client, got := rmPair(t)
	feedRead(t, c, client, connect5(2))
	if c.flow.state.Load() != flowCounting || c.flow.max != 2 {
		t.Fatalf("state %d max %d after an MQTT 5 CONNECT with Receive Maximum 2", c.flow.state.Load(), c.flow.max)
	}
	p1, p2, p3, p4 := rmPublish(1, "a"), rmPublish(2, "b"), rmPublish(3, "c"), rmPublish(4, "d")
	qos0 := []byte{0x30, 4, 0, 1, 't', 0}
	all := bytes.Join([][]byte{p1, p2, p3, qos0, p4}, nil)
	mustWrite(t, c, all)
	if b := recv(t, got); !bytes.Equal(b, bytes.Join([][]byte{p1, p2, qos0}, nil)) {
		t.Fatalf("first write %x, want the first two PUBLISHes and the QoS 0 one", b)
	}
	feedRead(t, c, client, []byte{0x40, 2, 0, 1}) // PUBACK 1
	if b := recv(t, got); !bytes.Equal(b, p3) {
		t.Fatalf("after PUBACK 1: %x, want PUBLISH 3", b)
	}
	feedRead(t, c, client, []byte{0x40, 3, 0, 9, 0}) // unknown id: nothing
	feedRead(t, c, client, []byte{0x50, 3, 0, 2, 0}) // PUBREC success: QoS 2 flow goes on
	feedRead(t, c, client, []byte{0x40, 3, 0, 2, 0}) // PUBACK 2
	if b := recv(t, got); !bytes.Equal(b, p4) {
		t.Fatalf("after PUBACK 2: %x, want PUBLISH 4", b)
	}
	if len(c.flow.held) != 0 || len(c.flow.out) != 2 {
		t.Errorf("held %d, out %v", len(c.flow.held), c.flow.out)
	}
}

// With Receive Maximum 1, a resent PUBLISH (its id is out) is not held, a
// new one is; a PUBACK the broker holds goes out before the PUBLISH the
// client's PUBACK releases, as the client's earlier packets are handled
// first.
func TestReceiveMaximumConnResendAndHeldAcks(t *testing.T) {
	c, client, got := rmPair(t)
	feedRead(t, c, client, connect5(1))
	p1, p2 := rmPublish(1, "a"), rmPublish(2, "b")
	mustWrite(t, c, p1)
	if b := recv(t, got); !bytes.Equal(b, p1) {
		t.Fatalf("first write %x, want PUBLISH 1", b)
	}
	dup := append([]byte{p1[0] | 0x08}, p1[1:]...)
	mustWrite(t, c, dup)
	if b := recv(t, got); !bytes.Equal(b, dup) {
		t.Fatalf("resent PUBLISH 1: %x, want it at once", b)
	}
	mustWrite(t, c, p2)
	ack := []byte(puback(7))
	mustWrite(t, c, ack)
	feedRead(t, c, client, []byte{0x40, 2, 0, 1}) // PUBACK 1
	if b := recv(t, got); !bytes.Equal(b, ack) {
		t.Fatalf("on the read: %x, want the held PUBACK 7", b)
	}
	if b := recv(t, got); !bytes.Equal(b, p2) {
		t.Fatalf("after PUBACK 1: %x, want PUBLISH 2", b)
	}
}

// MQTT 3.1.1 clients and MQTT 5 clients without a Receive Maximum pass:
// every PUBLISH written goes out at once.
func TestReceiveMaximumConnPassthrough(t *testing.T) {
	v311 := []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 30, 0, 1, 'c'}
	v5 := []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 0, 0, 1, 'c'}
	all := bytes.Join([][]byte{rmPublish(1, "a"), rmPublish(2, "b"), rmPublish(3, "c")}, nil)
	for name, connect := range map[string][]byte{"3.1.1": v311, "5 without Receive Maximum": v5} {
		c, client, got := rmPair(t)
		feedRead(t, c, client, connect)
		if s := c.flow.state.Load(); s != flowPassthrough {
			t.Errorf("%s: state %d, want passthrough", name, s)
		}
		mustWrite(t, c, all)
		if b := recv(t, got); !bytes.Equal(b, all) {
			t.Errorf("%s: wrote %x, want all three PUBLISHes", name, b)
		}
	}
}
