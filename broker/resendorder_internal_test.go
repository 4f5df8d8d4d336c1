package broker

import (
	"testing"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Resends follow creation time, then packet identifiers counted from the
// largest gap, so identifiers that wrapped stay behind the older ones.
func TestSortSent(t *testing.T) {
	cases := []struct {
		name string
		in   []packets.Packet
		want []uint16
	}{
		{"same second", []packets.Packet{{PacketID: 3, Created: 10}, {PacketID: 1, Created: 10}, {PacketID: 2, Created: 10}}, []uint16{1, 2, 3}},
		{"wrapped", []packets.Packet{{PacketID: 2, Created: 10}, {PacketID: 65535, Created: 10}, {PacketID: 1, Created: 10}, {PacketID: 65534, Created: 10}}, []uint16{65534, 65535, 1, 2}},
		{"time first", []packets.Packet{{PacketID: 1, Created: 11}, {PacketID: 9, Created: 10}}, []uint16{9, 1}},
		{"one", []packets.Packet{{PacketID: 7}}, []uint16{7}},
	}
	for _, c := range cases {
		sortSent(c.in)
		for i, p := range c.in {
			if p.PacketID != c.want[i] {
				t.Errorf("%s: order %v, want %v", c.name, ids(c.in), c.want)
				break
			}
		}
	}
}

func ids(ps []packets.Packet) []uint16 {
	out := make([]uint16, len(ps))
	for i, p := range ps {
		out[i] = p.PacketID
	}
	return out
}
