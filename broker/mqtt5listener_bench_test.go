package broker

import (
	"bytes"
	"net"
	"testing"
)

// discardConn is a net.Conn whose writes go nowhere.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkMQTT5ConnWrite is the cost the connection wrappers of
// mqtt5Listener add to one write of Mochi's: one delivery, and a buffer of
// 64 deliveries, to a 3.1.1 client (counting off) and to an MQTT 5 client
// with a Receive Maximum that never fills; "bare" is the write alone.
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
			c := &receiveMaximumConn{Conn: discardConn{}}
			c.state.Store(flowPassthrough)
			b.SetBytes(int64(len(w.buf)))
			for b.Loop() {
				_, _ = c.Write(w.buf)
			}
		})
		b.Run(w.name+"/v5-receive-maximum", func(b *testing.B) {
			c := &receiveMaximumConn{Conn: discardConn{}, max: 1 << 20, out: map[uint16]struct{}{}}
			c.state.Store(flowCounting)
			b.SetBytes(int64(len(w.buf)))
			for b.Loop() {
				_, _ = c.Write(w.buf)
				clear(c.out) // as if every delivery were acknowledged
			}
		})
	}
}
