package broker

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// discardConn is a net.Conn whose writes go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// SetWriteDeadline is a no-op: clientConn sets one before every write.
func (discardConn) SetWriteDeadline(time.Time) error { return nil }

// BenchmarkMQTT5ConnWrite is the cost clientConn adds to one write of
// Mochi's: one delivery, and a buffer of 64 deliveries, to a 3.1.1 client
// (counting off) and to an MQTT 5 client with a Receive Maximum that never
// fills; "bare" is the write alone.
func BenchmarkMQTT5ConnWrite(b *testing.B) {
	one := rmPublish(1, string(bytes.Repeat([]byte("x"), 200)))
	var batch []byte
	for i := range 64 {
		batch = append(batch, rmPublish(uint16(i+1), string(bytes.Repeat([]byte("x"), 200)))...)
	}
	for _, w := range []struct {
		name string
		buf  []byte
	}{{"one", one}, {"batch64", batch}} {
		b.Run(w.name+"/bare", func(b *testing.B) {
			c := discardConn{}
			b.SetBytes(int64(len(w.buf)))
			for b.Loop() {
				_, _ = c.Write(w.buf)
			}
		})
		b.Run(w.name+"/v3.1.1", func(b *testing.B) {
			c := &clientConn{Conn: discardConn{}, lim: roomyLimiter()}
			c.flow.state.Store(flowPassthrough)
			b.SetBytes(int64(len(w.buf)))
			for b.Loop() {
				_, _ = c.Write(w.buf)
			}
		})
		b.Run(w.name+"/v5-receive-maximum", func(b *testing.B) {
			c := &clientConn{Conn: discardConn{}, lim: roomyLimiter()}
			c.flow.max, c.flow.out = 1<<20, map[uint16]struct{}{}
			c.flow.state.Store(flowCounting)
			b.SetBytes(int64(len(w.buf)))
			for b.Loop() {
				_, _ = c.Write(w.buf)
				clear(c.flow.out) // as if every delivery were acknowledged
			}
		})
	}
}
