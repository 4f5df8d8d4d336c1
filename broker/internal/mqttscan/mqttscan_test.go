package mqttscan

import (
	"bytes"
	"reflect"
	"testing"
)

// keepBody keeps a CONNECT whole and an acknowledgement's first 3 bytes.
func keepBody(typ byte) int {
	switch typ {
	case 1:
		return 1 << 16
	case 4, 5, 7:
		return 3
	}
	return 0
}

func connect5(max uint16) []byte {
	body := []byte{0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 3, 0x21, byte(max >> 8), byte(max), 0, 1, 'c'}
	return append([]byte{0x10, byte(len(body))}, body...)
}

func rmPublish(id uint16, payload string) []byte {
	body := []byte{0, 1, 't', byte(id >> 8), byte(id), 0}
	body = append(body, payload...)
	return append([]byte{0x32, byte(len(body))}, body...)
}

// PacketLen and PublishID read whole packets; a short one is not whole.
func TestPacketLenAndPublishID(t *testing.T) {
	p := rmPublish(0x1234, "payload")
	if n, ok := PacketLen(p); n != len(p) || !ok {
		t.Errorf("PacketLen = %d, %v; want %d, true", n, ok, len(p))
	}
	if _, ok := PacketLen(p[:len(p)-1]); ok {
		t.Error("PacketLen of a cut packet says whole")
	}
	if id, ok := PublishID(p); id != 0x1234 || !ok {
		t.Errorf("PublishID = %#x, %v", id, ok)
	}
	if _, ok := PublishID([]byte{0x30, 3, 0, 1, 't'}); ok {
		t.Error("PublishID of a QoS 0 PUBLISH says it has one")
	}
}

// The scanner finds the same packets however the stream is cut.
func TestFrameScannerSplits(t *testing.T) {
	stream := bytes.Join([][]byte{connect5(7), rmPublish(5, "hello"), {0x40, 2, 0, 5}, {0xc0, 0}}, nil)
	whole := scanAll(stream, len(stream))
	if len(whole) != 4 {
		t.Fatalf("found %d packets, want 4", len(whole))
	}
	for _, step := range []int{1, 2, 3, 7} {
		if got := scanAll(stream, step); !reflect.DeepEqual(got, whole) {
			t.Errorf("in pieces of %d: %v, want %v", step, got, whole)
		}
	}
}

type scanned struct {
	first  byte
	body   string
	length int
}

func scanAll(stream []byte, step int) []scanned {
	var s Scanner
	var out []scanned
	for i := 0; i < len(stream); i += step {
		s.Feed(stream[i:min(i+step, len(stream))], keepBody, func(first byte, body []byte, length int) {
			out = append(out, scanned{first, string(body), length})
		})
	}
	return out
}

// FuzzScan: the parsers (Scanner, PacketLen, PublishID) take any bytes without panicking, and the
// scanner's packets do not depend on how the stream is cut.
func FuzzScan(f *testing.F) {
	f.Add(bytes.Join([][]byte{connect5(2), rmPublish(1, "x"), {0x40, 2, 0, 1}}, nil), uint8(3))
	f.Add([]byte{0x32, 0xff, 0xff, 0xff, 0xff, 0x7f}, uint8(1))
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		whole := scanAll(stream, max(len(stream), 1))
		if got := scanAll(stream, int(step)+1); !reflect.DeepEqual(got, whole) {
			t.Fatalf("in pieces of %d: %v, want %v", int(step)+1, got, whole)
		}
		for off := 0; off < len(stream); {
			n, ok := PacketLen(stream[off:])
			if !ok {
				break
			}
			PublishID(stream[off : off+n])
			off += n
		}
	})
}
