package broker

import (
	"net"
	"sync"

	"github.com/distchat/distchat/broker/roomlog"

	"github.com/distchat/distchat/broker/internal/mqttscan"
)

// Mochi v2.7.9 writes a SUBACK before it looks for the retained messages of
// the new subscription (Server.processSubscribe). A client that publishes a
// retained message as soon as another client's SUBACK arrives (a chat node
// announcing its presence while another subscribes to presence) races that
// scan: the subscriber can get the message twice, once as a retained
// message with RETAIN 1 and once live, where it should get it once, live,
// with RETAIN 0 ([MQTT-3.3.1-9] in 3.1.1, [MQTT-3.3.1-12] in 5).
//
// So the broker's TCP connections hold a SUBACK until the connection's
// reader comes back to the socket, as clientConn does for PUBACKs: Mochi
// handles a client's packets one at a time, so by then the SUBSCRIBE has
// been handled and its retained messages are queued. Other packets pass a
// held SUBACK (the retained messages among them: a broker may send a
// subscription's messages before its SUBACK, MQTT 5 section 3.8.4);
// SUBACKs keep their order.

// subackHoldListener gives every accepted connection a subackHoldConn.
type subackHoldListener struct{ net.Listener }

func (l subackHoldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &subackHoldConn{Conn: c}, nil
}

// subackHoldConn holds SUBACKs written to it until its next Read.
type subackHoldConn struct {
	net.Conn
	// mu guards held and reading. Write takes it inside Mochi's client
	// lock, Read on its own; it is never held across a network write.
	mu   sync.Mutex
	held []byte // SUBACKs waiting, whole packets
	// reading is true while Read waits for the client: then the packets
	// read so far are handled, and a SUBACK written (one Mochi buffered
	// and its writer flushes now) goes out at once.
	reading bool
}

// suback is the SUBACK fixed header's first byte.
const suback = 0x90

// Write holds the SUBACKs in p (whole packets, as Mochi writes them) and
// writes the rest.
func (c *subackHoldConn) Write(p []byte) (int, error) {
	return writeWithout(c.Conn, p, func(pkt []byte) bool { return pkt[0] == suback && c.hold(pkt) })
}

// writeWithout writes p to conn without the whole packets hold keeps back
// (Mochi writes one packet, or a buffer of whole packets, per call), and
// reports p as written.
func writeWithout(conn net.Conn, p []byte, hold func(pkt []byte) bool) (int, error) {
	send, held := mqttscan.Without(p, hold)
	if !held {
		return conn.Write(p)
	}
	if len(send) > 0 {
		if _, err := conn.Write(send); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// hold keeps a copy of the SUBACK pkt unless Read is waiting, and reports
// whether it did.
func (c *subackHoldConn) hold(pkt []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reading {
		return false
	}
	c.held = append(c.held, pkt...)
	return true
}

// Read writes the held SUBACKs, then reads: the client's earlier packets
// have all been handled.
func (c *subackHoldConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	out := c.held
	c.held = nil
	c.reading = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.reading = false
		c.mu.Unlock()
	}()
	if len(out) > 0 {
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(p)
}

// FlushAcks passes roomlog.AckFlusher through to the connection below.
func (c *subackHoldConn) FlushAcks() error {
	if f, ok := c.Conn.(roomlog.AckFlusher); ok {
		return f.FlushAcks()
	}
	return nil
}
