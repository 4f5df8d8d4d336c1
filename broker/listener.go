package broker

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
)

// acceptState is the MQTT TCP listener's accept loop as /healthz reports it.
type acceptState int

const (
	acceptServing  acceptState = iota // no accept has failed since the last one succeeded
	acceptRetrying                    // a temporary accept error (EMFILE, ...) is retried with back-off
	acceptStopped                     // the listener closed, or accept failed for good
)

func (s acceptState) String() string {
	return enumName(int(s), "acceptState", "serving", "retrying", "stopped")
}

// enumName is the name of value i of enumeration typ: names[i], or typ(i)
// when i has none.
func enumName(i int, typ string, names ...string) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", typ, i)
}

// guard wraps the TCP listener in the accept guard and connection limits.
func (s *Server) guard(inner net.Listener) *guardedListener {
	base := s.log.WithField("component", "broker")
	warnFileLimit(base, s.cfg.Limits.MaxConnections, openFileLimit())
	return newGuardedListener(inner, newConnLimiter(s.cfg.Limits, time.Now, base, &s.c), base, &s.c)
}

// fileReserve is the open files kept for all but MQTT connections.
const fileReserve = 256

// warnFileLimit warns when limits.max_connections does not keep MQTT
// connections below the open-file limit: accept would fail with EMFILE
// before the limit refuses cleanly.
func warnFileLimit(log *logrus.Entry, maxConns int, fileLimit uint64) {
	if fileLimit == 0 || (maxConns > 0 && uint64(maxConns)+fileReserve <= fileLimit) {
		return
	}
	log.WithFields(logrus.Fields{"event": logevent.FileLimitLow, "max_connections": maxConns, "open_file_limit": fileLimit,
		"reserve": fileReserve}).Warn("limits.max_connections (0: unlimited) does not stay below the open-file limit minus the reserve: raise ulimit -n or lower max_connections")
}

// Accept back-off bounds, as in net/http's Server.Serve.
const (
	minAcceptBackoff = 5 * time.Millisecond
	maxAcceptBackoff = time.Second
)

// guardedListener is the net.Listener Mochi's TCP accept loop reads. Mochi
// ends that loop on the first Accept error, so one moment without file
// descriptors (EMFILE) would leave the broker deaf to new clients: this
// retries temporary errors with back-off and reports its state for
// /healthz; each accepted connection goes through the connLimiter.
type guardedListener struct {
	net.Listener
	conns *connLimiter
	log   *logrus.Entry
	c     *counters
	after func(time.Duration) <-chan time.Time // time.After; tests make the back-off instant

	done      chan struct{} // closed by Close: stops a back-off wait
	closeOnce sync.Once

	mu       sync.Mutex // guards the fields below; held for no I/O or wait
	state    acceptState
	reason   string        // the error behind acceptRetrying or acceptStopped
	since    time.Time     // when state began
	failures int           // accept errors since the last success
	changed  chan struct{} // closed and replaced on each state change
}

func newGuardedListener(inner net.Listener, conns *connLimiter, log *logrus.Entry, c *counters) *guardedListener {
	return &guardedListener{Listener: inner, conns: conns, log: log, c: c, after: time.After,
		done: make(chan struct{}), changed: make(chan struct{}), since: time.Now()}
}

// Accept returns the next admitted connection; an error ends Mochi's loop.
func (l *guardedListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if backoff, err = l.failed(err, backoff); err != nil {
				return nil, err
			}
			continue
		}
		backoff = 0
		l.succeeded()
		if tc := l.conns.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// failed waits out the back-off after a temporary accept error and returns
// the next one, or returns the error that ends the accept loop.
func (l *guardedListener) failed(err error, backoff time.Duration) (time.Duration, error) {
	select {
	case <-l.done:
		l.setState(acceptStopped, "listener closed")
		return 0, err
	default:
	}
	if !temporaryAcceptError(err) {
		l.setState(acceptStopped, err.Error())
		l.log.WithError(err).WithField("event", logevent.AcceptStopped).
			Error("the MQTT TCP listener failed for good: no new client can connect (/healthz answers 503)")
		return 0, err
	}
	backoff = min(max(2*backoff, minAcceptBackoff), maxAcceptBackoff)
	l.c.acceptErrors.Add(1)
	l.setState(acceptRetrying, err.Error())
	l.log.WithError(err).WithFields(logrus.Fields{"event": logevent.AcceptFailed, "retry_in": backoff.String()}).
		Error("accepting an MQTT connection failed; retrying (/healthz answers 503 until an accept succeeds)")
	select {
	case <-l.after(backoff):
		return backoff, nil
	case <-l.done:
		l.setState(acceptStopped, "listener closed")
		return 0, fmt.Errorf("accept: %w", net.ErrClosed)
	}
}

// succeeded records an accept that worked, logging a recovery.
func (l *guardedListener) succeeded() {
	l.mu.Lock()
	if l.state == acceptServing {
		l.mu.Unlock()
		return
	}
	failures, down := l.failures, time.Since(l.since)
	l.mu.Unlock()
	l.setState(acceptServing, "")
	l.log.WithFields(logrus.Fields{"event": logevent.AcceptRecovered, "failures": failures, "down_for": down.String()}).
		Info("the MQTT TCP listener accepts connections again")
}

// setState records the accept loop's state and wakes health's waiters.
func (l *guardedListener) setState(s acceptState, reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case acceptRetrying:
		l.failures++
	case acceptServing:
		l.failures = 0
	}
	if s == l.state && reason == l.reason {
		return
	}
	if s != l.state {
		l.since = time.Now()
	}
	l.state, l.reason = s, reason
	close(l.changed)
	l.changed = make(chan struct{})
}

// health returns the accept loop's state, the error behind it (if any),
// and a channel closed at the next change.
func (l *guardedListener) health() (state acceptState, reason string, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state, l.reason, l.changed
}

// Close stops accepting, including a back-off wait in progress.
func (l *guardedListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// temporaryAcceptErrors are the accept(2) errors retried: out of file
// descriptors or kernel memory, or a connection that died in the backlog.
var temporaryAcceptErrors = []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EPROTO, syscall.EPERM, syscall.ETIMEDOUT,
	syscall.EINTR, syscall.EAGAIN}

func temporaryAcceptError(err error) bool {
	return !errors.Is(err, net.ErrClosed) &&
		slices.ContainsFunc(temporaryAcceptErrors, func(t error) bool { return errors.Is(err, t) })
}
