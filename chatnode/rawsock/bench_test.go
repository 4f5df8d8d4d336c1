package rawsock

import (
	"io"
	"net"
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
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			dialed, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			accepted, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			w, r := dialed, accepted
			if wrapped {
				w, r = Wrap(dialed), Wrap(accepted)
			}
			defer w.Close()
			defer r.Close()
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
