package roomlog

import (
	"bytes"
	"testing"
	"unicode/utf8"

	"github.com/distchat/distchat/broker/wire"
)

// FuzzRestamp: a record stamped as number 0 and restamped as n is byte for
// byte the record stamped as n, so the broker that sequences a forwarded
// record and the broker that routes it to its own clients hold the same.
func FuzzRestamp(f *testing.F) {
	f.Add("a-1", "alice", "lobby", "", "hello", int64(1), uint64(7))
	f.Add("text-00ff", "bob", "", "carol", "ünï \"quoted\"\n", int64(-5), uint64(1<<63))
	f.Fuzz(func(t *testing.T, id, from, room, to, body string, sentNS int64, seq uint64) {
		e := wire.Envelope{V: wire.Version, ID: id, From: from, Room: room, To: to, Body: body, SentNS: sentNS, BrokerNS: 42}
		for _, s := range []string{id, from, room, to, body} {
			if !utf8.ValidString(s) {
				return // the hook takes only valid UTF-8 payloads
			}
		}
		if e.Validate() != nil || seq == 0 {
			return
		}
		zero, err := e.Encode()
		if err != nil {
			return
		}
		got, err := Restamp(zero, seq)
		if err != nil {
			t.Fatalf("restamp %q as #%d: %v", zero, seq, err)
		}
		e.RoomSeq = seq
		want, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("restamped %q as #%d:\n got %s\nwant %s", zero, seq, got, want)
		}
	})
}
