package broker

import (
	"bytes"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/roomlog"

	"github.com/distchat/distchat/broker/ackhold"
	"github.com/distchat/distchat/config"
)

// recordingConn records each Write as one string and reads from in.
type recordingConn struct {
	net.Conn // nil: only Read, Write, SetWriteDeadline, RemoteAddr and Close are used
	in       io.Reader

	mu     sync.Mutex
	writes []string
	closed bool
}

func (r *recordingConn) Read(p []byte) (int, error) { return r.in.Read(p) }

func (r *recordingConn) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, string(p))
	return len(p), nil
}

func (r *recordingConn) SetWriteDeadline(time.Time) error { return nil }

func (r *recordingConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 40000}
}

func (r *recordingConn) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

func (r *recordingConn) wrote() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

func puback(id byte) string { return string([]byte{0x40, 2, 0, id}) }

// roomyLimiter is a connLimiter without connection limits whose timeouts
// a test does not reach.
func roomyLimiter() *connLimiter {
	return newConnLimiter(config.Limits{ConnectTimeout: time.Minute, WriteTimeout: time.Minute}, time.Now, quietLog(), new(counters))
}

// heldAcksConn is rec admitted as a clientConn by a limiter without limits.
func heldAcksConn(t *testing.T, rec *recordingConn) *clientConn {
	t.Helper()
	lim := roomyLimiter()
	if lim.reserve("10.0.0.1") != refusedNot {
		t.Fatal("the limiter refused a connection")
	}
	return &clientConn{Conn: rec, lim: lim, ip: "10.0.0.1"}
}

func TestHeldAcks(t *testing.T) {
	publish := "\x32\x0atopic\x00\x01hi"
	tests := []struct {
		name   string
		writes []string
		then   string // "read", "close" or "" (nothing)
		want   []string
	}{
		{"held until nothing else happens", []string{puback(1), puback(2)}, "", nil},
		{"sent in one write when the reader reads", []string{puback(1), puback(2)}, "read", []string{puback(1) + puback(2)}},
		{"sent ahead of a delivery", []string{puback(1), publish}, "", []string{puback(1) + publish}},
		{"sent on close", []string{puback(3)}, "close", []string{puback(3)}},
		{"sent when the room log flushes them before a waiting append", []string{puback(1), puback(2)}, "flush", []string{puback(1) + puback(2)}},
		{"a delivery alone goes out at once", []string{publish}, "", []string{publish}},
		{"an MQTT 5 PUBACK with a reason code is not held", []string{"\x40\x03\x00\x01\x10"}, "", []string{"\x40\x03\x00\x01\x10"}},
		{"a PINGRESP is not held", []string{"\xd0\x00"}, "", []string{"\xd0\x00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recordingConn{in: strings.NewReader("x")}
			c := heldAcksConn(t, rec)
			for _, w := range tc.writes {
				if n, err := c.Write([]byte(w)); err != nil || n != len(w) {
					t.Fatalf("write %q: %d, %v", w, n, err)
				}
			}
			switch tc.then {
			case "read":
				buf := make([]byte, 8)
				if n, err := c.Read(buf); err != nil || string(buf[:n]) != "x" {
					t.Fatalf("read: %q, %v", buf[:n], err)
				}
			case "close":
				if err := c.Close(); err != nil {
					t.Fatalf("close: %v", err)
				}
			case "flush":
				var f roomlog.AckFlusher = c
				if err := f.FlushAcks(); err != nil {
					t.Fatalf("flush: %v", err)
				}
			}
			if got := rec.wrote(); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("wrote %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHeldAcksBounded: the ackhold.Max-th PUBACK goes out at once, with
// the ones held before it.
func TestHeldAcksBounded(t *testing.T) {
	rec := &recordingConn{in: strings.NewReader("")}
	c := heldAcksConn(t, rec)
	var want bytes.Buffer
	for i := range ackhold.Max {
		ack := puback(byte(i))
		want.WriteString(ack)
		if _, err := c.Write([]byte(ack)); err != nil {
			t.Fatal(err)
		}
	}
	if got := rec.wrote(); len(got) != 1 || got[0] != want.String() {
		t.Fatalf("%d writes (%d bytes), want one of the %d PUBACKs", len(got), len(strings.Join(got, "")), ackhold.Max)
	}
}

// TestSubackHeldUntilRead: a SUBACK waits for the connection's next Read,
// a PUBLISH written with it passes it, and once Read waits a SUBACK goes
// out at once.
func TestSubackHeldUntilRead(t *testing.T) {
	in, feed := io.Pipe()
	t.Cleanup(func() { _ = feed.Close() })
	rec := &recordingConn{in: in}
	c := heldAcksConn(t, rec)
	sub := string([]byte{0x90, 3, 0, 1, 1})
	pub := string([]byte{0x30, 3, 0, 1, 't'})
	if n, err := c.Write([]byte(sub + pub)); err != nil || n != len(sub+pub) {
		t.Fatalf("write: %d, %v", n, err)
	}
	if got := rec.wrote(); strings.Join(got, "|") != pub {
		t.Fatalf("wrote %q, want only the PUBLISH %q", got, pub)
	}
	read := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		read <- err
	}()
	for { // Read writes the held SUBACK and waits for the client
		c.acks.Lock()
		reading := c.reading
		c.acks.Unlock()
		if reading && len(rec.wrote()) == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if got := rec.wrote(); strings.Join(got, "|") != pub+"|"+sub {
		t.Fatalf("wrote %q, want the PUBLISH, then the held SUBACK", got)
	}
	if _, err := c.Write([]byte(sub)); err != nil {
		t.Fatal(err)
	}
	if got := rec.wrote(); len(got) != 3 || got[2] != sub {
		t.Fatalf("wrote %q while Read waits, want the SUBACK at once", got)
	}
	if _, err := feed.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := <-read; err != nil {
		t.Fatalf("read: %v", err)
	}
}
