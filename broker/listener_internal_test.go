package broker

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/config"
)

const testWait = 10 * time.Second

// scriptedListener returns the errors queued on errs first, then the real
// listener's connections, and signals every Accept call on entered.
type scriptedListener struct {
	net.Listener
	errs    chan error
	entered chan struct{}
}

func newScripted(t *testing.T) *scriptedListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &scriptedListener{Listener: ln, errs: make(chan error, 100), entered: make(chan struct{}, 1000)}
}

func (l *scriptedListener) Accept() (net.Conn, error) {
	l.entered <- struct{}{}
	select {
	case err := <-l.errs:
		return nil, err
	default:
		return l.Listener.Accept()
	}
}

// waitEntered waits for n more Accept calls.
func (l *scriptedListener) waitEntered(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(testWait)
	for range n {
		select {
		case <-l.entered:
		case <-deadline:
			t.Fatalf("fewer than %d Accept calls within %v", n, testWait)
		}
	}
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

func quietLog() *logrus.Entry {
	log := logrus.New()
	log.SetOutput(io.Discard)
	return logrus.NewEntry(log)
}

func testGuard(t *testing.T, inner net.Listener, c *counters) *guardedListener {
	t.Helper()
	lim := newConnLimiter(config.Limits{ConnectTimeout: time.Minute}, time.Now, quietLog(), c)
	g := newGuardedListener(inner, lim, quietLog(), c)
	t.Cleanup(func() {
		if err := g.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Error(err)
		}
	})
	return g
}

// dialAsync connects to addr in the background; the connection (or the
// dial error) arrives on the channel.
func dialAsync(addr string) <-chan net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := net.DialTimeout("tcp", addr, testWait)
		if err != nil {
			c = nil
		}
		ch <- c
	}()
	return ch
}

// closeDialed closes the connection dialAsync made.
func closeDialed(t *testing.T, ch <-chan net.Conn) {
	t.Helper()
	select {
	case c := <-ch:
		if c == nil {
			t.Fatal("dial failed")
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	case <-time.After(testWait):
		t.Fatal("dial did not finish")
	}
}

// Temporary accept errors are retried with back-off doubling from 5 ms to
// 1 s, as net/http does; anything else ends the accept loop and says why.
func TestGuardedAccept(t *testing.T) {
	for _, tc := range []struct {
		name    string
		errs    []error
		waits   []time.Duration // the back-off before each retry
		endsErr bool
	}{
		{name: "EMFILE ten times", errs: repeat(acceptErr(syscall.EMFILE), 10),
			waits: ms(5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000)},
		{name: "ENFILE", errs: []error{acceptErr(syscall.ENFILE)}, waits: ms(5)},
		{name: "ECONNABORTED then ENOBUFS", errs: []error{acceptErr(syscall.ECONNABORTED), acceptErr(syscall.ENOBUFS)}, waits: ms(5, 10)},
		{name: "EINVAL", errs: []error{acceptErr(syscall.EINVAL)}, endsErr: true},
		{name: "unknown error", errs: []error{errors.New("accept: something new")}, endsErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sl := newScripted(t)
			for _, err := range tc.errs {
				sl.errs <- err
			}
			c := new(counters)
			g := testGuard(t, sl, c)
			var waits []time.Duration
			g.after = func(d time.Duration) <-chan time.Time {
				waits = append(waits, d)
				ch := make(chan time.Time, 1)
				ch <- time.Time{}
				return ch
			}
			if !tc.endsErr {
				dialed := dialAsync(sl.Addr().String())
				t.Cleanup(func() { closeDialed(t, dialed) })
			}
			conn, err := g.Accept()
			state, reason, _ := g.health()
			if tc.endsErr {
				if err == nil || !errors.Is(err, tc.errs[0]) || state != acceptStopped || reason != tc.errs[0].Error() {
					t.Fatalf("Accept: %v; state %s (%s); want the error and stopped", err, state, reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Accept: %v", err)
			}
			if err := conn.Close(); err != nil {
				t.Error(err)
			}
			if state != acceptServing || c.acceptErrors.Load() != int64(len(tc.errs)) {
				t.Errorf("state %s, accept errors %d; want serving, %d", state, c.acceptErrors.Load(), len(tc.errs))
			}
			if !slices.Equal(waits, tc.waits) {
				t.Errorf("back-off %v, want %v", waits, tc.waits)
			}
		})
	}
}

// Close ends a back-off wait at once.
func TestGuardedAcceptCloseDuringBackoff(t *testing.T) {
	sl := newScripted(t)
	sl.errs <- acceptErr(syscall.EMFILE)
	g := testGuard(t, sl, new(counters))
	g.after = func(time.Duration) <-chan time.Time { return nil } // never fires
	done := make(chan error, 1)
	go func() {
		_, err := g.Accept()
		done <- err
	}()
	waitState(t, g, acceptRetrying)
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(testWait):
		t.Fatal("Accept still waiting after Close")
	}
	if state, reason, _ := g.health(); state != acceptStopped || reason != "listener closed" {
		t.Errorf("state %s (%s), want stopped (listener closed)", state, reason)
	}
}

func waitState(t *testing.T, g *guardedListener, want acceptState) {
	t.Helper()
	deadline := time.After(testWait)
	for {
		state, _, changed := g.health()
		if state == want {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("accept state %s, want %s within %v", state, want, testWait)
		}
	}
}

func healthz(t *testing.T, s *Server) (int, string) {
	t.Helper()
	c := http.Client{Timeout: testWait}
	resp, err := c.Get("http://" + s.HTTPAddr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := resp.Body.Close(); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// mqttConnect connects to addr with a minimal MQTT 3.1.1 CONNECT and checks
// the CONNACK accepts it.
func mqttConnect(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, testWait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	connect := []byte{0x10, 13, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 0, 0, 1, 'x'}
	if _, err := c.Write(connect); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(testWait)); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK % x, %v", ack, err)
	}
}

// While accept fails (EMFILE) the broker is not healthy, /healthz says why,
// and it is healthy again once a client gets in; an accept loop that ends
// for good leaves /healthz unhealthy.
func TestHealthzFollowsAcceptLoop(t *testing.T) {
	cfg := config.DefaultBroker()
	cfg.TCP, cfg.HTTP, cfg.LogLevel = "127.0.0.1:0", "127.0.0.1:0", "error"
	cfg.RoomLog.Enabled = false
	log := logrus.New()
	log.SetOutput(io.Discard)
	s, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	sl := newScripted(t)
	for range 3 {
		sl.errs <- acceptErr(syscall.EMFILE)
	}
	s.listen = func(string, string) (net.Listener, error) { return sl, nil }
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}

	sl.waitEntered(t, 4) // three failures, then the call waiting for a connection
	if code, body := healthz(t, s); code != http.StatusServiceUnavailable || !strings.Contains(body, "retrying") || !strings.Contains(body, "too many open files") {
		t.Errorf("/healthz while accept fails: %d %q", code, body)
	}
	if st := s.Stats().Listener; st.State != "retrying" || st.AcceptErrors != 3 {
		t.Errorf("stats while accept fails: %+v", st)
	}

	mqttConnect(t, s.Addr())
	sl.waitEntered(t, 1) // the guard has recorded the success
	if code, body := healthz(t, s); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz after an accept succeeded: %d %q", code, body)
	}

	sl.errs <- acceptErr(syscall.EINVAL)
	mqttConnect(t, s.Addr()) // ends the pending Accept; the next one fails for good
	waitState(t, s.tcpGuard, acceptStopped)
	if code, body := healthz(t, s); code != http.StatusServiceUnavailable || !strings.Contains(body, "stopped") || !strings.Contains(body, "invalid argument") {
		t.Errorf("/healthz after the accept loop ended: %d %q", code, body)
	}
}

// fakeConn is one end of a pipe with a chosen remote address.
type fakeConn struct {
	net.Conn
	remote net.Addr
}

func (c fakeConn) RemoteAddr() net.Addr { return c.remote }

func pipeFrom(t *testing.T, ip string) net.Conn {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return fakeConn{Conn: a, remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

// The limiter counts open connections in total and per address, refuses
// beyond the limits, and frees a slot exactly once per closed connection.
func TestConnLimiterCounts(t *testing.T) {
	c := new(counters)
	lim := newConnLimiter(config.Limits{MaxConnections: 3, MaxConnectionsPerIP: 2, ConnectTimeout: time.Minute}, time.Now, quietLog(), c)
	admitted := map[string]net.Conn{}
	for _, step := range []struct {
		name, ip string
		ok       bool
	}{
		{"a1", "10.0.0.1", true}, {"a2", "10.0.0.1", true}, {"a3", "10.0.0.1", false},
		{"b1", "10.0.0.2", true}, {"c1", "10.0.0.3", false},
	} {
		conn := lim.admit(pipeFrom(t, step.ip))
		if (conn != nil) != step.ok {
			t.Fatalf("%s from %s: admitted %v, want %v", step.name, step.ip, conn != nil, step.ok)
		}
		admitted[step.name] = conn
	}
	if c.refused[refusedPerIP].Load() != 1 || c.refused[refusedMaxConnections].Load() != 1 || lim.openConns() != 3 {
		t.Errorf("refused per IP %d, max %d, open %d; want 1, 1, 3", c.refused[refusedPerIP].Load(), c.refused[refusedMaxConnections].Load(), lim.openConns())
	}
	for range 2 { // a second Close frees nothing more
		if err := admitted["a1"].Close(); err != nil {
			t.Fatal(err)
		}
	}
	if lim.openConns() != 2 {
		t.Errorf("open %d after one close, want 2", lim.openConns())
	}
	if lim.admit(pipeFrom(t, "10.0.0.1")) == nil {
		t.Error("a connection from 10.0.0.1 refused after one of its two closed")
	}
}

// A read that hits the CONNECT deadline is counted once and closes the
// connection; once Mochi has set the keep-alive deadline, a timeout is not
// a CONNECT timeout.
func TestConnectDeadline(t *testing.T) {
	for _, connected := range []bool{false, true} {
		c := new(counters)
		past := func() time.Time { return time.Now().Add(-time.Hour) }
		lim := newConnLimiter(config.Limits{ConnectTimeout: time.Second}, past, quietLog(), c)
		conn := lim.admit(pipeFrom(t, "10.0.0.1"))
		if connected {
			if err := conn.SetDeadline(past()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v, want a deadline error", err)
		}
		if _, err := conn.Read(make([]byte, 1)); !connected && !errors.Is(err, io.ErrClosedPipe) {
			t.Fatalf("second read: %v, want the connection closed", err)
		}
		want := map[bool]int64{false: 1, true: 0}[connected]
		wantOpen := map[bool]int64{false: 0, true: 1}[connected]
		if c.connectTimeouts.Load() != want || lim.openConns() != wantOpen {
			t.Errorf("connected=%v: connect timeouts %d, open %d; want %d, %d", connected, c.connectTimeouts.Load(), lim.openConns(), want, wantOpen)
		}
	}
}

func repeat(err error, n int) []error {
	out := make([]error, n)
	for i := range out {
		out[i] = err
	}
	return out
}

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, n := range v {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

// The broker warns at start when max_connections does not keep MQTT
// connections below the open-file limit.
func TestWarnFileLimit(t *testing.T) {
	for _, tc := range []struct {
		max   int
		limit uint64
		warn  bool
	}{
		{10000, 1048576, false},
		{10000, 10256, false},
		{10000, 10000, true},
		{0, 1048576, true}, // unlimited
		{10000, 0, false},  // limit unknown
	} {
		var buf bytes.Buffer
		log := logrus.New()
		log.SetOutput(&buf)
		warnFileLimit(logrus.NewEntry(log), tc.max, tc.limit)
		if got := strings.Contains(buf.String(), "file_limit_low"); got != tc.warn {
			t.Errorf("max_connections %d, open-file limit %d: warned %v, want %v", tc.max, tc.limit, got, tc.warn)
		}
	}
}
