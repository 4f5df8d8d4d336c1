package broker

import (
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
)

// writeTimeoutListener gives every accepted MQTT connection a deadline per
// socket write (limits.write_timeout).
//
// Mochi writes to a client while holding that client's lock, and a
// publisher's goroutine does the fan-out, so one QoS 1 subscriber that stops
// reading (a partitioned or frozen host) blocks every publisher to its topics
// until its keep-alive expires, 1.5 × keep-alive later (docs/mochi-and-paho.md; the
// partition drill showed every node stalled). Mochi sets one deadline for read
// and write from the keep-alive; the wrapper keeps that for reads only and
// closes a connection whose write does not finish in time. The client's
// persistent session keeps its messages, the room log has every one of them,
// and the node catches up when it reconnects.
type writeTimeoutListener struct {
	net.Listener
	timeout time.Duration
	onStall func(remote string)
}

func (l *writeTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeTimeoutConn{Conn: c, timeout: l.timeout, onStall: l.onStall}, nil
}

type writeTimeoutConn struct {
	net.Conn
	timeout time.Duration
	onStall func(remote string)
	once    sync.Once
}

// SetDeadline is what Mochi calls with the keep-alive: it applies to reads
// only, because writes have their own, shorter, deadline.
func (c *writeTimeoutConn) SetDeadline(t time.Time) error { return c.Conn.SetReadDeadline(t) }

func (c *writeTimeoutConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	if err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			// A partly written packet would corrupt the stream: close it.
			c.once.Do(func() {
				c.onStall(c.RemoteAddr().String())
				if cerr := c.Conn.Close(); cerr != nil {
					err = cerr
				}
			})
		}
	}
	return n, err
}

// stalled counts and logs a connection closed because a write timed out.
func (s *Server) stalled(remote string) {
	s.c.stalled.Add(1)
	s.log.WithFields(logrus.Fields{"component": "broker", "event": logevent.SlowSubscriberDisconnected, "remote": remote,
		"write_timeout": s.cfg.Limits.WriteTimeout.String()}).
		Warn("a client did not read for write_timeout: connection closed so publishers are not blocked (its session and the room log keep its messages)")
}
