package rawio

import (
	"io"
	"testing"
)

// BenchmarkWriteRead: one 256-byte write and its read on a loopback TCP
// connection, plain and wrapped: what a packet costs each way, and what
// the wrapper allocates.
func BenchmarkWriteRead(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		name := "plain"
		if wrapped {
			name = "wrapped"
		}
		b.Run(name, func(b *testing.B) {
			w, r := tcpPair(b, false)
			if wrapped {
				w, r = Wrap(w), Wrap(r)
			}
			msg := make([]byte, 256)
			buf := make([]byte, 256)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := w.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
