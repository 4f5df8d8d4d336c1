package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// sameAsJSON decodes b with unmarshalEnvelope and json.Unmarshal and fails
// on any difference in the result or in whether it is an error. It reports
// whether the fast path took b.
func sameAsJSON(t *testing.T, b []byte) bool {
	t.Helper()
	var want, got Envelope
	wantErr := json.Unmarshal(b, &want)
	gotErr := unmarshalEnvelope(b, &got)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("%q: error %v, json.Unmarshal's %v", b, gotErr, wantErr)
	}
	if wantErr == nil && got != want {
		t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
	}
	var scratch Envelope
	return fastEnvelope(b, &scratch)
}

func TestUnmarshalEnvelopeEqualsJSON(t *testing.T) {
	full, err := Envelope{V: 1, ID: "alice-x-1", Kind: "me", Room: "lobby", To: "bob", From: "alice", Boot: -5,
		Seq: 18446744073709551615, SentNS: 9223372036854775807, Body: "héllo 🙂", Pad: "xxxx",
		RoomSeq: 7, BrokerNS: -9223372036854775808}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		in   string
		fast bool // the fast path takes it
	}{
		{string(full), true},
		{`{}`, true},
		{` { "v" : 1 , "id" : "a" } `, true},
		{`{"v":1,"id":"a","id":"b"}`, true}, // the last one wins
		{`{"v":-0,"seq":0}`, true},
		{`{"v":1,"body":"a\"b"}`, false},       // escapes
		{`{"v":1,"body":"a\u00e9"}`, false},    // escapes
		{`{"v":1,"ID":"upper"}`, false},        // encoding/json matches keys case-insensitively
		{`{"v":1,"extra":{"x":[1,2]}}`, false}, // unknown key
		{`{"v":1.0}`, false},
		{`{"v":1e2}`, false},
		{`{"seq":-1}`, false},
		{`{"seq":18446744073709551616}`, false},
		{`{"boot":-9223372036854775809}`, false},
		{`{"v":01}`, false},
		{`{"v":null,"id":null}`, false},
		{`{"v":"1"}`, false},
		{`{"v":1,}`, false},
		{`{"v":1} x`, false},
		{`{"v":1`, false},
		{`[]`, false},
		{`{"body":"tab	in"}`, false}, // a raw control character
		{``, false},
		{`{"v":-}`, false},
		{`{"v":99999999999999999999}`, false},
	} {
		if fast := sameAsJSON(t, []byte(tt.in)); fast != tt.fast {
			t.Errorf("%q: fast path %t, want %t", tt.in, fast, tt.fast)
		}
	}
}

func FuzzUnmarshalEnvelope(f *testing.F) {
	for _, s := range []string{`{"v":1,"id":"a-1","room":"r","from":"a","boot":3,"seq":1,"sent_ns":5,"body":"b","room_seq":2}`,
		`{"v":1,"id":"x","body":"\u00e9\"","pad":"` + strings.Repeat("x", 40) + `"}`, `{}`, `{"seq":-0}`, `{"v":1e0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return // DecodeEnvelope refuses it before decoding
		}
		sameAsJSON(t, b)
	})
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	payload, err := Envelope{V: 1, ID: "peer-dn948oi7tqgt-1f", Room: "lobby", From: "peer", Boot: 1796099798378191421,
		Seq: 31, SentNS: 1796099798404460771, Body: "load 30", Pad: strings.Repeat("x", 150), RoomSeq: 307,
		BrokerNS: 1796099798404460999}.Encode()
	if err != nil {
		b.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		decode func([]byte, *Envelope) error
	}{{"fast", unmarshalEnvelope}, {"encoding/json", func(b []byte, e *Envelope) error { return json.Unmarshal(b, e) }}} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var e Envelope
				if err := tt.decode(payload, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
