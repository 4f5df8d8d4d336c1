package broker

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
)

// clientConn is an MQTT client's TCP connection as Mochi reads and writes
// it, the one place where the broker's limits meet the socket:
//
//   - the connection holds a slot of limits.max_connections and
//     limits.max_connections_per_ip until it is closed (connLimiter);
//   - until Mochi has read CONNECT, a read times out at
//     limits.connect_timeout, and such a timeout is counted, logged and
//     closes the connection;
//   - Mochi's SetDeadline (the keep-alive, set once CONNECT is read) applies
//     to reads only;
//   - every write has its own deadline, limits.write_timeout. Mochi writes
//     to a client while holding that client's lock, and a publisher's
//     goroutine does the fan-out, so one QoS 1 subscriber that stops
//     reading (a partitioned or frozen host) would block every publisher
//     to its topics until its keep-alive expires, 1.5 × keep-alive later.
//     A write that does not finish in time closes the connection instead
//     (a partly written packet would corrupt the stream); the client's
//     session keeps its messages, the room log has every one of them, and
//     the node catches up when it reconnects.
type clientConn struct {
	net.Conn // the accepted socket
	lim      *connLimiter
	ip       string // the per-IP limit's key

	connected atomic.Bool // Mochi has read CONNECT (it set the keep-alive deadline)
	timedOut  atomic.Bool // the CONNECT timeout was reported
	stallOnce sync.Once   // the write timeout was reported
	closeOnce sync.Once
	closeErr  error
}

// SetDeadline is how Mochi sets the keep-alive after reading CONNECT: it
// applies to reads only, because writes have their own, shorter, deadline,
// and from then on a read timeout is the keep-alive's, not CONNECT's.
func (c *clientConn) SetDeadline(t time.Time) error {
	c.connected.Store(true)
	return c.Conn.SetReadDeadline(t)
}

// Read reports and closes a connection whose read hits the CONNECT
// deadline (before Mochi has set the keep-alive).
func (c *clientConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && !c.connected.Load() && errors.Is(err, os.ErrDeadlineExceeded) && c.timedOut.CompareAndSwap(false, true) {
		c.lim.connectTimedOut(c.RemoteAddr().String())
		if cerr := c.Close(); cerr != nil {
			c.lim.log.WithError(cerr).Debug("close idle connection")
		}
	}
	return n, err
}

// Write writes b within limits.write_timeout, or closes the connection.
func (c *clientConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.lim.writeTimeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		c.stallOnce.Do(func() {
			c.lim.stalled(c.RemoteAddr().String())
			if cerr := c.Close(); cerr != nil {
				err = cerr
			}
		})
	}
	return n, err
}

// Close frees the connection's slot and closes it, once (in that order:
// once the client sees the close, /stats no longer counts it).
func (c *clientConn) Close() error {
	c.closeOnce.Do(func() {
		c.lim.release(c.ip)
		c.closeErr = c.Conn.Close()
	})
	return c.closeErr
}

// stalled counts and logs a connection closed because a write took longer
// than limits.write_timeout.
func (l *connLimiter) stalled(remote string) {
	l.c.stalled.Add(1)
	l.log.WithFields(logrus.Fields{"event": logevent.SlowSubscriberDisconnected, "remote": remote,
		"write_timeout": l.writeTimeout.String()}).
		Warn("a client did not read for write_timeout: connection closed so publishers are not blocked (its session and the room log keep its messages)")
}
