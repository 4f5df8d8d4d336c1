package broker

import (
	"errors"
	"net"
	"sync"
)

// Mochi writes the PUBACK of a QoS 1 publish to the publisher, with a
// system call of its own, before it hands the message to the subscribers.
// On loopback that write is the dearest part of a publish (the kernel runs
// the receiving side of the connection and wakes the publisher's reader: a
// CPU profile of the broker under the one-pair load puts it above the
// delivery's own write), and every delivery would wait for it.
//
// So the broker's connections hold a PUBACK back until the connection's
// reader comes back to the socket: Mochi reads a client's packets through
// a buffer and handles each before it reads the next, and it reads from
// the connection only when the buffer is empty. The fan-out goes first, a
// publisher waiting for its PUBACK gets it as soon as its publish has been
// handled, and a burst of publishes that arrived together is acknowledged
// in one write. PUBACKs also go out ahead of anything else written to the
// connection, when maxHeldAcks are waiting, on Close, and before the room
// log begins an append that waits (roomlog.AckFlusher). No timer is
// involved: a PUBACK waits only for the handling of packets the client
// has already sent, and not for a disk flush or a replicated write.

// maxHeldAcks is how many PUBACKs wait at most; one more goes out at once
// with them.
const maxHeldAcks = 64

// heldAcksListener gives every accepted connection a heldAcksConn.
type heldAcksListener struct{ net.Listener }

func (l heldAcksListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &heldAcksConn{Conn: c}, nil
}

// heldAcksConn holds PUBACKs written to it until its next Read.
type heldAcksConn struct {
	net.Conn

	// mu guards held and spare. Write takes it inside Mochi's client lock,
	// Read and Close on their own; it is never held across a network
	// write.
	mu    sync.Mutex
	held  []byte // PUBACKs waiting, whole packets
	spare []byte // a written batch's buffer, for the next one
}

// pubackLen is the length of a PUBACK without a reason code.
const pubackLen = 4

// isPuback reports whether p is one whole MQTT PUBACK without a reason code
// (MQTT 3.1.1, or MQTT 5 success), as Mochi writes it: one Write per packet.
func isPuback(p []byte) bool { return len(p) == pubackLen && p[0] == 0x40 && p[1] == 2 }

// Write holds a PUBACK; anything else goes out at once, after the PUBACKs
// held so far.
func (c *heldAcksConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if isPuback(p) && len(c.held)/pubackLen+1 < maxHeldAcks {
		if len(c.held) == 0 {
			c.held, c.spare = c.spare[:0], nil
		}
		c.held = append(c.held, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	out := c.held
	c.held = nil
	c.mu.Unlock()
	if len(out) == 0 {
		return c.Conn.Write(p)
	}
	_, err := c.Conn.Write(append(out, p...))
	c.recycle(out)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// recycle keeps a written batch's buffer for the next one.
func (c *heldAcksConn) recycle(b []byte) {
	if cap(b) > 4<<10 {
		return
	}
	c.mu.Lock()
	if c.spare == nil {
		c.spare = b[:0]
	}
	c.mu.Unlock()
}

// flush writes the held PUBACKs.
func (c *heldAcksConn) flush() error {
	c.mu.Lock()
	out := c.held
	c.held = nil
	c.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	_, err := c.Conn.Write(out)
	c.recycle(out)
	return err
}

// FlushAcks writes the held PUBACKs now (roomlog.AckFlusher): the room
// log calls it before an append that waits, so PUBACKs of messages
// already stored do not wait with it.
func (c *heldAcksConn) FlushAcks() error { return c.flush() }

// Read writes the held PUBACKs, then reads: the client's earlier packets
// have all been handled.
func (c *heldAcksConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Close writes the held PUBACKs, then closes the connection. A PUBACK
// that cannot be written is the publisher's to resend on its next
// connection (the room log stores a resent message once).
func (c *heldAcksConn) Close() error {
	ferr := c.flush()
	return errors.Join(ferr, c.Conn.Close())
}
