package mqttconn

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// gated is a net.Conn whose writes wait for the test: each write reports
// its start on started and returns when release delivers its result.
type gated struct {
	net.Conn // nil: only Write, Close and SetWriteDeadline are used
	started  chan []byte
	release  chan error

	mu     sync.Mutex
	wrote  bytes.Buffer
	writes int
	closed bool
}

func newGated() *gated { return &gated{started: make(chan []byte, 16), release: make(chan error)} }

func (g *gated) Write(p []byte) (int, error) {
	g.started <- bytes.Clone(p)
	if err := <-g.release; err != nil {
		return 0, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.writes++
	g.wrote.Write(p)
	return len(p), nil
}

func (g *gated) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	return nil
}

func (g *gated) SetWriteDeadline(time.Time) error { return nil }

func (g *gated) state() (string, int, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.wrote.String(), g.writes, g.closed
}

// next waits for the flusher's next write to start and returns its bytes.
func (g *gated) next(t *testing.T) []byte {
	t.Helper()
	select {
	case p := <-g.started:
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no write started")
		return nil
	}
}

func write(t *testing.T, c *Conn, s string) {
	t.Helper()
	if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("write %q: %d, %v", s, n, err)
	}
}

// TestWritesCoalesceWhileOneIsInProgress: an idle connection writes at
// once; what arrives during that write goes out in one write after it.
func TestWritesCoalesceWhileOneIsInProgress(t *testing.T) {
	g := newGated()
	c := WrapHoldingAcks(g, 0)
	write(t, c, "first")
	if p := g.next(t); string(p) != "first" {
		t.Fatalf("first write %q", p)
	}
	for _, s := range []string{"a", "b", "c", "d"} {
		write(t, c, s)
	}
	g.release <- nil
	if p := g.next(t); string(p) != "abcd" {
		t.Fatalf("second write %q, want abcd", p)
	}
	g.release <- nil
	closed := make(chan error)
	go func() { closed <- c.Close() }()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if got, n, isClosed := g.state(); got != "firstabcd" || n != 2 || !isClosed {
		t.Fatalf("wrote %q in %d writes, closed %t", got, n, isClosed)
	}
}

// TestCloseWritesPending: Close writes what is pending before it closes.
func TestCloseWritesPending(t *testing.T) {
	g := newGated()
	c := WrapHoldingAcks(g, 0)
	write(t, c, "x")
	g.next(t)
	write(t, c, "DISCONNECT")
	closed := make(chan error)
	go func() { closed <- c.Close() }()
	g.release <- nil
	if p := g.next(t); string(p) != "DISCONNECT" {
		t.Fatalf("write %q after close", p)
	}
	g.release <- nil
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("late")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	if got, _, isClosed := g.state(); got != "xDISCONNECT" || !isClosed {
		t.Fatalf("wrote %q, closed %t", got, isClosed)
	}
}

// TestWriteErrorReported: a failed write fails the next Write and Close.
func TestWriteErrorReported(t *testing.T) {
	g := newGated()
	c := WrapHoldingAcks(g, 0)
	write(t, c, "x")
	g.next(t)
	write(t, c, "blocked") // pending behind the failing write
	g.release <- errors.New("connection reset")
	closed := make(chan error)
	go func() { closed <- c.Close() }()
	if err := <-closed; err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("close: %v", err)
	}
	if _, err := c.Write([]byte("y")); err == nil {
		t.Fatal("write after the failure: no error")
	}
}

// TestWriteErrorReportedByWrite: after the flusher's write fails, Write
// returns the error (it is reported once the flusher recorded it).
func TestWriteErrorReportedByWrite(t *testing.T) {
	g := newGated()
	c := WrapHoldingAcks(g, 0)
	t.Cleanup(func() {
		if err := c.Close(); err == nil {
			t.Error("close after a failed write: no error")
		}
	})
	write(t, c, "x")
	g.next(t)
	g.release <- errors.New("broken pipe")
	<-c.done // the flusher stops after recording the error
	if _, err := c.Write([]byte("y")); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("write after a failed write: %v", err)
	}
}

// TestWriteBlocksAtMaxPending: with MaxPending bytes waiting, Write waits
// for the flusher, and all bytes arrive in order.
func TestWriteBlocksAtMaxPending(t *testing.T) {
	g := newGated()
	c := WrapHoldingAcks(g, 0)
	write(t, c, "x")
	g.next(t)
	big := strings.Repeat("b", MaxPending)
	write(t, c, big)
	wrote := make(chan error)
	go func() {
		_, err := c.Write([]byte("tail"))
		wrote <- err
	}()
	g.release <- nil // "x"
	if p := g.next(t); len(p) != MaxPending {
		t.Fatalf("second write %d bytes, want %d", len(p), MaxPending)
	}
	if err := <-wrote; err != nil { // room again once the batch is taken
		t.Fatal(err)
	}
	g.release <- nil
	if p := g.next(t); string(p) != "tail" {
		t.Fatalf("third write %q", p)
	}
	g.release <- nil
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got, n, _ := g.state(); got != "x"+big+"tail" || n != 3 {
		t.Fatalf("%d writes of %d bytes", n, len(got))
	}
}

// TestRoundTripTCP: bytes written from many goroutines over a real TCP
// connection arrive whole and read back through the buffer.
func TestRoundTripTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- s
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client := WrapHoldingAcks(raw, 0)
	srv, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	server := WrapHoldingAcks(srv, 0)
	t.Cleanup(func() { server.Close() })
	const writers, each, size = 8, 200, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			msg := bytes.Repeat([]byte{byte('a' + w)}, size)
			for range each {
				if _, err := client.Write(msg); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	counts := map[byte]int{}
	buf := make([]byte, size)
	for range writers * each {
		if err := readFull(server, buf); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, bytes.Repeat(buf[:1], size)) {
			t.Fatalf("interleaved message %q", buf)
		}
		counts[buf[0]]++
	}
	wg.Wait()
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	for w := range writers {
		if counts[byte('a'+w)] != each {
			t.Errorf("writer %d: %d messages, want %d", w, counts[byte('a'+w)], each)
		}
	}
}

func readFull(c net.Conn, buf []byte) error {
	for n := 0; n < len(buf); {
		m, err := c.Read(buf[n:])
		if err != nil {
			return err
		}
		n += m
	}
	return nil
}
