package rawmqtt

import (
	"reflect"
	"testing"
)

// FuzzDecode: any bytes decode to a packet or an error, never a panic; a
// packet a client could send encodes again to bytes that decode to the same
// packet.
func FuzzDecode(f *testing.F) {
	for _, v := range []byte{V311, V5} {
		for _, p := range roundTripCases() {
			if p.Connect != nil {
				p.Connect.Version = v
			}
			if b, err := Encode(p, v); err == nil {
				f.Add(b, v == V5)
			}
		}
	}
	f.Add([]byte{0x20, 6, 0, 0, 3, 0x13, 0, 10}, true)
	f.Add([]byte{0x90, 4, 0, 1, 0, 0}, true)
	f.Fuzz(func(t *testing.T, b []byte, five bool) {
		v := V311
		if five {
			v = V5
		}
		p, n, err := Decode(b, v)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("took %d of %d bytes", n, len(b))
		}
		if p.Connect != nil {
			v = p.Connect.Version // a CONNECT carries its own version
		}
		again, err := Encode(p, v)
		if err != nil {
			return // a broker packet (CONNACK, SUBACK, ...): not encoded by a client
		}
		q, m, err := Decode(again, v)
		if err != nil || m != len(again) {
			t.Fatalf("re-encoded %x does not decode: %v", again, err)
		}
		if !reflect.DeepEqual(normal(q), normal(p)) {
			t.Fatalf("round trip changed the packet\n got %+v\nwant %+v", q, p)
		}
	})
}
