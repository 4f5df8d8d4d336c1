package broker

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/ackhold"
	"github.com/distchat/distchat/broker/internal/mqttscan"
	"github.com/distchat/distchat/broker/logevent"
)

// clientConn is an MQTT client's TCP connection as Mochi reads and writes
// it, where the broker's limits meet the socket:
//
//   - it holds a slot of limits.max_connections(_per_ip) until closed;
//   - a read before CONNECT times out at limits.connect_timeout;
//   - Mochi's SetDeadline (the keep-alive) applies to reads only; each
//     write has limits.write_timeout, as Mochi writes under the client's
//     lock from the publisher's goroutine: a subscriber that stops reading
//     would block every publisher to its topics. A timed-out write closes
//     the connection; the session and the room log keep the messages;
//   - a PUBACK waits until the reader is back at the socket: Mochi writes
//     it before it handles the publish, so held, it follows the publish's
//     effects (TestEmptyRetainedPublishClears in broker/conformance);
//   - a SUBACK waits for the reader too: Mochi v2.7.9 writes it before its
//     retained-message scan, so a retained publish sent on the SUBACK
//     could reach the subscriber twice ([MQTT-3.3.1-9], [MQTT-3.3.1-12]);
//     other packets may pass it (MQTT 5 section 3.8.4);
//   - an MQTT 5 client gets no more unacknowledged QoS 1 and 2 PUBLISHes
//     than its Receive Maximum (receivemaximum.go says why).
//
// WebSocket clients use Mochi's own listener, which has none of this.
type clientConn struct {
	net.Conn // the accepted socket
	lim      *connLimiter
	ip       string // the per-IP limit's key

	connected atomic.Bool // Mochi has read CONNECT (it set the keep-alive deadline)
	timedOut  atomic.Bool // the CONNECT timeout was reported
	stallOnce sync.Once   // the write timeout was reported
	closeOnce sync.Once
	closeErr  error

	flow receiveFlow // Receive Maximum flow control; its lock is taken before acks

	// acks guards held, spare, subacks and reading; it is taken inside
	// Mochi's client lock and flow.mu, never across a network write.
	acks    sync.Mutex
	held    []byte // PUBACKs waiting, whole packets
	spare   []byte // a written batch's buffer, for the next one
	subacks []byte // SUBACKs waiting for the reader, whole packets
	reading bool   // Read waits for the client: a SUBACK written now goes out at once
}

// SetDeadline is how Mochi sets the keep-alive after reading CONNECT; it
// applies to reads only.
func (c *clientConn) SetDeadline(t time.Time) error {
	c.connected.Store(true)
	return c.Conn.SetReadDeadline(t)
}

// Read reads what the client sends, then follows its acknowledgements for
// its Receive Maximum (incoming).
func (c *clientConn) Read(b []byte) (int, error) {
	n, err := c.readSocket(b)
	if n > 0 && c.flow.state.Load() != flowPassthrough {
		c.flow.in.Feed(b[:n], keepBody, c.incoming)
	}
	return n, err
}

// readSocket writes the held PUBACKs and SUBACKs, then reads; a read past
// the CONNECT deadline is reported and closes the connection.
func (c *clientConn) readSocket(b []byte) (int, error) {
	if err := c.FlushAcks(); err != nil {
		return 0, err
	}
	c.acks.Lock()
	subacks := c.subacks
	c.subacks, c.reading = nil, true
	c.acks.Unlock()
	defer func() {
		c.acks.Lock()
		c.reading = false
		c.acks.Unlock()
	}()
	if len(subacks) > 0 {
		if _, err := c.write(subacks); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(b)
	if err != nil && !c.connected.Load() && errors.Is(err, os.ErrDeadlineExceeded) && c.timedOut.CompareAndSwap(false, true) {
		c.lim.connectTimedOut(c.RemoteAddr().String())
		if cerr := c.Close(); cerr != nil {
			c.lim.log.WithError(cerr).Debug("close idle connection")
		}
	}
	return n, err
}

// Write holds PUBLISHes over the Receive Maximum, then acknowledgements.
func (c *clientConn) Write(p []byte) (int, error) {
	if c.flow.state.Load() != flowCounting {
		return c.writeAcks(p)
	}
	return c.writeCounted(p)
}

// writeAcks holds a PUBACK, and the SUBACKs in p unless the reader waits;
// anything else goes out at once, after the PUBACKs held so far.
func (c *clientConn) writeAcks(p []byte) (int, error) {
	c.acks.Lock()
	if !c.reading {
		if rest, held := mqttscan.Without(p, c.holdSuback); held {
			c.acks.Unlock()
			if len(rest) > 0 {
				if _, err := c.writeAcks(rest); err != nil {
					return 0, err
				}
			}
			return len(p), nil
		}
	}
	if ackhold.IsPuback(p) && len(c.held)/ackhold.Len+1 < ackhold.Max {
		if len(c.held) == 0 {
			c.held, c.spare = c.spare[:0], nil
		}
		c.held = append(c.held, p...)
		c.acks.Unlock()
		return len(p), nil
	}
	out := c.held
	c.held = nil
	c.acks.Unlock()
	if len(out) == 0 {
		return c.write(p)
	}
	_, err := c.write(append(out, p...))
	c.recycle(out)
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// holdSuback keeps a copy of pkt when it is a SUBACK (0x90), and reports
// whether it did. c.acks is held.
func (c *clientConn) holdSuback(pkt []byte) bool {
	if pkt[0] != 0x90 {
		return false
	}
	c.subacks = append(c.subacks, pkt...)
	return true
}

// FlushAcks writes the held PUBACKs now (also roomlog.AckFlusher).
func (c *clientConn) FlushAcks() error {
	c.acks.Lock()
	out := c.held
	c.held = nil
	c.acks.Unlock()
	if len(out) == 0 {
		return nil
	}
	_, err := c.write(out)
	c.recycle(out)
	return err
}

// recycle keeps a written batch's buffer for the next one.
func (c *clientConn) recycle(b []byte) {
	if cap(b) > 4<<10 {
		return
	}
	c.acks.Lock()
	if c.spare == nil {
		c.spare = b[:0]
	}
	c.acks.Unlock()
}

// write writes b within limits.write_timeout, or closes the connection.
func (c *clientConn) write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.lim.writeTimeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		c.stallOnce.Do(func() {
			c.lim.stalled(c.RemoteAddr().String())
			if cerr := c.close(false); cerr != nil {
				err = cerr
			}
		})
	}
	return n, err
}

// Close writes the held PUBACKs, frees the connection's slot and closes
// it, once (in that order: once the client sees the close, /stats no
// longer counts it).
func (c *clientConn) Close() error { return c.close(true) }

// close is Close; flush is false after a write timed out.
func (c *clientConn) close(flush bool) error {
	c.closeOnce.Do(func() {
		var ferr error
		if flush {
			ferr = c.FlushAcks()
		}
		c.lim.release(c.ip)
		c.closeErr = errors.Join(ferr, c.Conn.Close())
	})
	return c.closeErr
}

// stalled counts and logs a connection closed by limits.write_timeout.
func (l *connLimiter) stalled(remote string) {
	l.c.stalled.Add(1)
	l.log.WithFields(logrus.Fields{"event": logevent.SlowSubscriberDisconnected, "remote": remote,
		"write_timeout": l.writeTimeout.String()}).
		Warn("a client did not read for write_timeout: connection closed so publishers are not blocked (its session and the room log keep its messages)")
}
