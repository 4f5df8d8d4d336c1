package broker

import (
	"net"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/lograte"
	"github.com/distchat/distchat/broker/rawio"
	"github.com/distchat/distchat/config"
)

// connRefusal is the limit that refused a connection at accept.
type connRefusal int

const (
	refusedNot            connRefusal = iota // admitted
	refusedMaxConnections                    // limits.max_connections
	refusedPerIP                             // limits.max_connections_per_ip
)

func (r connRefusal) String() string {
	return enumName(int(r), "connRefusal", "admitted", "max_connections", "max_connections_per_ip")
}

// Log lines about refused and idle connections: a burst, then one per
// second, so a connection flood is no log flood.
const (
	connLogBurst = 10
	connLogEvery = time.Second
)

// connLimiter admits the TCP listener's connections: at most
// limits.max_connections open, limits.max_connections_per_ip from one
// address (0: unlimited), each sending CONNECT within
// limits.connect_timeout, so that sockets that never speak cannot use up
// the file descriptors. Each admitted connection is a clientConn.
type connLimiter struct {
	max, perIP     int
	connectTimeout time.Duration
	writeTimeout   time.Duration
	now            func() time.Time
	log            *logrus.Entry
	c              *counters
	refusedLog     *lograte.Limiter
	timeoutLog     *lograte.Limiter

	mu   sync.Mutex     // guards open and byIP; held for no I/O
	open int            // connections admitted and not yet closed
	byIP map[string]int // open connections per remote IP
}

func newConnLimiter(l config.Limits, now func() time.Time, log *logrus.Entry, c *counters) *connLimiter {
	return &connLimiter{max: l.MaxConnections, perIP: l.MaxConnectionsPerIP, connectTimeout: l.ConnectTimeout, writeTimeout: l.WriteTimeout,
		now: now, log: log, c: c, byIP: map[string]int{},
		refusedLog: lograte.New(now, connLogBurst, connLogEvery), timeoutLog: lograte.New(now, connLogBurst, connLogEvery)}
}

// admit returns c as a clientConn with its CONNECT deadline, or nil.
func (l *connLimiter) admit(c net.Conn) net.Conn {
	ip := remoteIP(c.RemoteAddr())
	if why := l.reserve(ip); why != refusedNot {
		l.refuse(c, why)
		return nil
	}
	tc := &clientConn{Conn: rawio.Wrap(c), lim: l, ip: ip} // raw calls: package rawio says why
	// Mochi sets no deadline before CONNECT; its keep-alive replaces this one.
	if err := c.SetReadDeadline(l.now().Add(l.connectTimeout)); err != nil {
		l.log.WithError(err).WithField("remote", c.RemoteAddr().String()).Debug("set connect deadline: connection already gone")
		if cerr := tc.Close(); cerr != nil {
			l.log.WithError(cerr).Debug("close connection")
		}
		return nil
	}
	return tc
}

// reserve counts a new connection from ip in, or says which limit refuses it.
func (l *connLimiter) reserve(ip string) connRefusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.max > 0 && l.open >= l.max:
		return refusedMaxConnections
	case l.perIP > 0 && l.byIP[ip] >= l.perIP:
		return refusedPerIP
	}
	l.open++
	l.byIP[ip]++
	return refusedNot
}

func (l *connLimiter) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
}

func (l *connLimiter) openConns() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(l.open)
}

// refuse counts and logs a refused connection, then closes it (in that
// order: once the client sees the close, /stats counts it).
func (l *connLimiter) refuse(c net.Conn, why connRefusal) {
	remote := c.RemoteAddr().String()
	l.c.refused[why].Add(1)
	if ok, held := l.refusedLog.Allow(); ok {
		l.log.WithFields(logrus.Fields{"event": logevent.ConnectionRefused, "remote": remote, "limit": why.String(),
			"max_connections": l.max, "max_connections_per_ip": l.perIP, "suppressed": held}).
			Warn("connection refused at accept: over a connection limit")
	}
	if err := c.Close(); err != nil {
		l.log.WithError(err).WithField("remote", remote).Debug("close refused connection")
	}
}

// connectTimedOut counts and logs a connection closed by limits.connect_timeout.
func (l *connLimiter) connectTimedOut(remote string) {
	l.c.connectTimeouts.Add(1)
	if ok, held := l.timeoutLog.Allow(); ok {
		l.log.WithFields(logrus.Fields{"event": logevent.ConnectTimeout, "remote": remote,
			"connect_timeout": l.connectTimeout.String(), "suppressed": held}).
			Warn("connection closed: no CONNECT within connect_timeout")
	}
}

// remoteIP is the address's IP without the port, the key of the per-IP limit.
func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
