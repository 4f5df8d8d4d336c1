package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// sameEncodingAsJSON fails unless Encode writes what json.Marshal writes.
func sameEncodingAsJSON(t *testing.T, e Envelope) {
	t.Helper()
	want, err := json.Marshal(e)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	got, err := e.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if string(got) != string(want) {
		t.Fatalf("Encode(%+v):\n got %s\nwant %s", e, got, want)
	}
}

func TestEncodeEqualsJSON(t *testing.T) {
	for _, e := range []Envelope{
		{},
		{V: 1, ID: "alice-x-1", Room: "lobby", From: "alice", Boot: 7, Seq: 1, SentNS: 5, Body: "hi"},
		{V: 1, ID: "a-1", Kind: "me", To: "bob", From: "alice", SentNS: -1, Body: "waves"},
		{V: -3, ID: "x", From: "y", Boot: -9223372036854775808, Seq: 18446744073709551615, SentNS: 9223372036854775807,
			Body: "<b>&\"quoted\"\\ \n\t\r\b\f\x00\x1f\x7f é 🙂 \u2028\u2029 \xff\xfe", Pad: strings.Repeat("x", 100),
			RoomSeq: 18446744073709551615, BrokerNS: -1},
	} {
		sameEncodingAsJSON(t, e)
	}
}

func FuzzEncodeEnvelope(f *testing.F) {
	f.Add(1, "alice-x-1", "", "lobby", "", "alice", int64(3), uint64(1), int64(5), "hello <you> & \u2028", "", uint64(2), int64(9))
	f.Add(0, "", "me", "", "bob", "\xff", int64(-1), uint64(0), int64(0), "\x00\t", "xx", uint64(0), int64(0))
	f.Fuzz(func(t *testing.T, v int, id, kind, room, to, from string, boot int64, seq uint64, sent int64, body, pad string,
		roomSeq uint64, brokerNS int64) {
		sameEncodingAsJSON(t, Envelope{V: v, ID: id, Kind: kind, Room: room, To: to, From: from, Boot: boot, Seq: seq,
			SentNS: sent, Body: body, Pad: pad, RoomSeq: roomSeq, BrokerNS: brokerNS})
	})
}

func BenchmarkEncodeEnvelope(b *testing.B) {
	e := Envelope{V: 1, ID: "peer-dn948oi7tqgt-1f", Room: "lobby", From: "peer", Boot: 1796099798378191421,
		Seq: 31, SentNS: 1796099798404460771, Body: "load 30", Pad: strings.Repeat("x", 150), RoomSeq: 307,
		BrokerNS: 1796099798404460999}
	for _, tt := range []struct {
		name   string
		encode func(Envelope) ([]byte, error)
	}{{"Encode", Envelope.Encode}, {"encoding/json", func(e Envelope) ([]byte, error) { return json.Marshal(e) }}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tt.encode(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestEncodePadded(t *testing.T) {
	base := Envelope{V: Version, ID: "n0-1", Room: "lobby", From: "n0", SentNS: 1, Body: "load 1"}
	plain, err := base.Encode()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		size    int
		wantLen int
		padded  bool
	}{
		{"padded to the size", 256, 256, true},
		{"a size just above the plain encoding cannot fit a pad field", len(plain) + 3, len(plain), false},
		{"a size below the plain encoding leaves it unpadded", 10, len(plain), false},
		{"no size", 0, len(plain), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			e.Pad = "stale"
			b, err := e.EncodePadded(tc.size)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != tc.wantLen || (e.Pad != "") != tc.padded {
				t.Fatalf("EncodePadded(%d) = %d bytes, pad %q; want %d bytes, padded %t", tc.size, len(b), e.Pad, tc.wantLen, tc.padded)
			}
			var back Envelope
			if err := json.Unmarshal(b, &back); err != nil || back != e {
				t.Fatalf("decodes to %+v (%v), want the envelope as sent %+v", back, err, e)
			}
		})
	}
}
