// Package mqttscan finds MQTT packet boundaries in a byte stream, and the
// packet identifier of a QoS 1 or 2 PUBLISH, without decoding packets: the
// broker's client connection (clientConn) uses it to follow a client's flow (see
// broker/receivemaximum.go) at the cost of a few byte reads per packet.
package mqttscan

// publish is the PUBLISH control packet type.
const publish = 3

// PacketLen returns the length of the packet at the start of b, and false
// if b does not hold all of it.
func PacketLen(b []byte) (int, bool) {
	var rl, shift uint
	for i := 1; i < len(b) && i <= 4; i++ {
		rl |= uint(b[i]&0x7f) << shift
		shift += 7
		if b[i]&0x80 == 0 {
			n := i + 1 + int(rl)
			return n, n <= len(b)
		}
	}
	return 0, false
}

// PublishID returns the packet identifier of pkt, a whole packet, if it is
// a QoS 1 or 2 PUBLISH.
func PublishID(pkt []byte) (uint16, bool) {
	if len(pkt) < 2 || pkt[0]>>4 != publish || pkt[0]>>1&0x03 == 0 {
		return 0, false
	}
	i := 1
	for i < len(pkt) && i <= 4 && pkt[i]&0x80 != 0 {
		i++
	}
	i++ // past the last remaining-length byte
	if i+2 > len(pkt) {
		return 0, false
	}
	i += 2 + (int(pkt[i])<<8 | int(pkt[i+1])) // past the topic
	if i+2 > len(pkt) {
		return 0, false
	}
	return uint16(pkt[i])<<8 | uint16(pkt[i+1]), true
}

// Scanner splits a byte stream, read in pieces of any size, into MQTT
// packets, keeping the start of each body.
type Scanner struct {
	stage     int // 0: first byte next, 1: remaining length, 2: body
	first     byte
	length    uint32
	shift     uint
	remaining uint32
	keep      int
	body      []byte
}

// Feed scans b; emit gets each packet that ends in it, with the first
// keep(type) bytes of its body (body is reused after emit returns).
func (s *Scanner) Feed(b []byte, keep func(typ byte) int, emit func(first byte, body []byte, length int)) {
	for len(b) > 0 {
		switch s.stage {
		case 0:
			s.first, s.length, s.shift, s.body = b[0], 0, 0, s.body[:0]
			b = b[1:]
			s.stage = 1
		case 1:
			c := b[0]
			b = b[1:]
			s.length |= uint32(c&0x7f) << s.shift
			s.shift += 7
			if c&0x80 != 0 && s.shift < 28 {
				continue
			}
			s.remaining, s.keep, s.stage = s.length, keep(s.first>>4), 2
		case 2:
			n := min(len(b), int(s.remaining))
			if want := s.keep - len(s.body); want > 0 {
				s.body = append(s.body, b[:min(n, want)]...)
			}
			b = b[n:]
			s.remaining -= uint32(n)
		}
		if s.stage == 2 && s.remaining == 0 {
			emit(s.first, s.body, int(s.length))
			s.stage = 0
		}
	}
}

// Without returns p without the whole packets for which drop reports true
// (drop sees every whole packet, in order; trailing bytes that are not a
// whole packet stay), and whether drop took any: if not, p itself.
func Without(p []byte, drop func(pkt []byte) bool) ([]byte, bool) {
	var kept []byte // nil while nothing is dropped
	for off := 0; off < len(p); {
		n, whole := PacketLen(p[off:])
		if !whole {
			n = len(p) - off
		}
		pkt := p[off : off+n]
		off += n
		if whole && drop(pkt) {
			if kept == nil {
				kept = append(make([]byte, 0, len(p)), p[:off-n]...)
			}
			continue
		}
		if kept != nil {
			kept = append(kept, pkt...)
		}
	}
	if kept == nil {
		return p, false
	}
	return kept, true
}
