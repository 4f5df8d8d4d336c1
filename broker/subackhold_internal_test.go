package broker

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// A SUBACK waits for the connection's next Read; a PUBLISH written with it
// passes it; once Read waits, a SUBACK goes out at once.
func TestSubackHeldUntilRead(t *testing.T) {
	server, client := net.Pipe()
	t.Cleanup(func() { _ = server.Close(); _ = client.Close() })
	c := &subackHoldConn{Conn: server}
	got := make(chan []byte, 16)
	go func() {
		buf := make([]byte, 256)
		for {
			n, err := client.Read(buf)
			if err != nil {
				return
			}
			got <- append([]byte(nil), buf[:n]...)
		}
	}()
	recv := func() []byte {
		t.Helper()
		select {
		case b := <-got:
			return b
		case <-time.After(5 * time.Second):
			t.Fatal("nothing written")
			return nil
		}
	}
	sub := []byte{0x90, 3, 0, 1, 1}
	pub := []byte{0x30, 3, 0, 1, 't'}
	go func() { _, _ = c.Write(append(append([]byte(nil), sub...), pub...)) }()
	if b := recv(); !bytes.Equal(b, pub) {
		t.Fatalf("wrote %x, want only the PUBLISH %x", b, pub)
	}
	go func() { _, _ = c.Read(make([]byte, 8)) }()
	if b := recv(); !bytes.Equal(b, sub) {
		t.Fatalf("Read wrote %x, want the held SUBACK %x", b, sub)
	}
	for { // Read is waiting now: a SUBACK passes
		c.mu.Lock()
		reading := c.reading
		c.mu.Unlock()
		if reading {
			break
		}
		time.Sleep(time.Millisecond)
	}
	go func() { _, _ = c.Write(sub) }()
	if b := recv(); !bytes.Equal(b, sub) {
		t.Fatalf("wrote %x while Read waits, want the SUBACK", b)
	}
}
