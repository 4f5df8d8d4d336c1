package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns two ends of a loopback TCP connection; the first is
// wrapped when wrapped is true. Both are closed at cleanup.
func tcpPair(t testing.TB, wrapped bool) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			errc <- err
			return
		}
		accepted <- c
	}()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	select {
	case c := <-accepted:
		t.Cleanup(func() { c.Close() })
		if wrapped {
			c = Wrap(c)
		}
		return c, peer
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("accept: timed out")
	}
	return nil, nil
}

// modes runs f once on plain connections and once on wrapped ones: the
// wrapper must behave as a plain connection does.
func modes(t *testing.T, f func(t *testing.T, c, peer net.Conn)) {
	for _, wrapped := range []bool{false, true} {
		name := "plain"
		if wrapped {
			name = "wrapped"
		}
		t.Run(name, func(t *testing.T) {
			c, peer := tcpPair(t, wrapped)
			f(t, c, peer)
		})
	}
}

func TestWrap(t *testing.T) {
	p1, p2 := net.Pipe()
	t.Cleanup(func() { p1.Close(); p2.Close() })
	if got := Wrap(p1); got != p1 {
		t.Errorf("Wrap(net.Pipe end) = %T, want the connection itself", got)
	}
	c, _ := tcpPair(t, false)
	w := Wrap(c)
	if Enabled && w == c {
		t.Errorf("Wrap(TCP) returned the connection itself with raw calls enabled")
	}
	if !Enabled && w != c {
		t.Errorf("Wrap(TCP) = %T with raw calls disabled, want the connection itself", w)
	}
	if w.LocalAddr().String() != c.LocalAddr().String() || w.RemoteAddr().String() != c.RemoteAddr().String() {
		t.Errorf("addresses changed: %v→%v, want %v→%v", w.LocalAddr(), w.RemoteAddr(), c.LocalAddr(), c.RemoteAddr())
	}
}

// pattern is n bytes that differ from one position to the next, so a
// dropped, repeated or reordered chunk shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestBytesArriveWholeAndInOrder(t *testing.T) {
	tests := []struct {
		name   string
		size   int // bytes sent
		chunk  int // bytes per Write
		toPeer bool
	}{
		{"small writes to the peer", 64 << 10, 100, true},
		{"one write larger than the socket buffers", 16 << 20, 16 << 20, true},
		{"small reads from the peer", 64 << 10, 100, false},
		{"large reads from the peer", 16 << 20, 1 << 20, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			modes(t, func(t *testing.T, c, peer net.Conn) {
				from, to := peer, c
				if tt.toPeer {
					from, to = c, peer
				}
				want := pattern(tt.size)
				werr := make(chan error, 1)
				go func() {
					for off := 0; off < len(want); off += tt.chunk {
						end := min(off+tt.chunk, len(want))
						if n, err := from.Write(want[off:end]); err != nil || n != end-off {
							werr <- errors.Join(err, errors.New("short write"))
							return
						}
					}
					werr <- from.Close()
				}()
				got, err := io.ReadAll(to)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if err := <-werr; err != nil {
					t.Fatalf("write: %v", err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(want))
				}
			})
		})
	}
}

func TestReadEOF(t *testing.T) {
	modes(t, func(t *testing.T, c, peer net.Conn) {
		if _, err := peer.Write([]byte("last")); err != nil {
			t.Fatal(err)
		}
		peer.Close()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != "last" {
			t.Fatalf("ReadAll = %q, %v; want \"last\", nil", got, err)
		}
		if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("Read after EOF = %d, %v; want 0, io.EOF", n, err)
		}
		if n, err := c.Read(nil); n != 0 || err != nil {
			t.Fatalf("Read(nil) = %d, %v; want 0, nil", n, err)
		}
	})
}

// checkTimeout asserts err is a deadline's error from op, as net gives it.
func checkTimeout(t *testing.T, op string, err error) {
	t.Helper()
	var ne net.Error
	var oe *net.OpError
	switch {
	case !errors.Is(err, os.ErrDeadlineExceeded):
		t.Errorf("%s error %v is not os.ErrDeadlineExceeded", op, err)
	case !errors.As(err, &ne) || !ne.Timeout():
		t.Errorf("%s error %v is not a net.Error with Timeout()", op, err)
	case !errors.As(err, &oe) || oe.Op != op:
		t.Errorf("%s error %v is not a *net.OpError of op %q", op, err, op)
	}
}

func TestDeadlines(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		modes(t, func(t *testing.T, c, _ net.Conn) {
			if err := c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(make([]byte, 8))
			if n != 0 {
				t.Errorf("Read = %d bytes, want 0", n)
			}
			checkTimeout(t, "read", err)
		})
	})
	t.Run("write to a peer that does not read", func(t *testing.T) {
		modes(t, func(t *testing.T, c, _ net.Conn) {
			if err := c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			big := make([]byte, 64<<20)
			n, err := c.Write(big)
			if n >= len(big) {
				t.Errorf("Write = %d bytes, want fewer than %d", n, len(big))
			}
			checkTimeout(t, "write", err)
		})
	})
}

func TestClosed(t *testing.T) {
	modes(t, func(t *testing.T, c, _ net.Conn) {
		blocked := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 8))
			blocked <- err
		}()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-blocked:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read blocked before Close = %v, want net.ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Read blocked before Close did not return")
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close = %v, want net.ErrClosed", err)
		}
	})
}

func TestWriteToAResetPeer(t *testing.T) {
	modes(t, func(t *testing.T, c, peer net.Conn) {
		// Linger 0: the peer's close sends a reset.
		if err := peer.(*net.TCPConn).SetLinger(0); err != nil {
			t.Fatal(err)
		}
		peer.Close()
		deadline := time.Now().Add(10 * time.Second)
		var err error
		for err == nil && time.Now().Before(deadline) {
			_, err = c.Write([]byte("after the reset"))
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("Write to a reset peer = %v, want ECONNRESET or EPIPE", err)
		}
		var se *os.SyscallError
		if !errors.As(err, &se) || se.Syscall != "write" {
			t.Errorf("Write error %v is not an *os.SyscallError of write", err)
		}
	})
}
