package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"alice", true},
		{"Zoë", true},
		{"room-1_a.b", true},
		{"", false},
		{strings.Repeat("x", MaxNameBytes), true},
		{strings.Repeat("x", MaxNameBytes+1), false},
		{"a+b", false},
		{"a#", false},
		{"a/b", false},
		{"a b", false},
		{"a\tb", false},
		{"nul\x00", false},
		{"bell\a", false},
		{"$SYS", false},
		{"\xff\xfe", false},
	}
	for _, tt := range tests {
		err := ValidateName("user", tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q) error %v does not wrap ErrInvalidName", tt.name, err)
		}
	}
}

func TestTopicsRoundTrip(t *testing.T) {
	tests := []struct {
		topic string
		want  Topic
	}{
		{RoomTopic("lobby", "alice"), Topic{Kind: KindRoom, Room: "lobby", User: "alice"}},
		{DMTopic("bob", "alice"), Topic{Kind: KindDM, Recipient: "bob", User: "alice"}},
		{PresenceTopic("carol"), Topic{Kind: KindPresence, User: "carol"}},
		{SyncTopic("dave"), Topic{Kind: KindSync, User: "dave"}},
		{InboxTopic("dave"), Topic{Kind: KindInbox, User: "dave"}},
	}
	for _, tt := range tests {
		got, err := ParseTopic(tt.topic)
		if err != nil || got != tt.want {
			t.Errorf("ParseTopic(%q) = %+v, %v; want %+v", tt.topic, got, err, tt.want)
		}
	}
	if RoomFilter("lobby") != "chat/rooms/lobby/+" || DMFilter("bob") != "chat/dm/bob/+" {
		t.Errorf("filters: %q %q", RoomFilter("lobby"), DMFilter("bob"))
	}
}

func TestParseTopicRejects(t *testing.T) {
	for _, topic := range []string{
		"", "chat", "chat/rooms/lobby", "chat/rooms/lobby/alice/extra", "other/rooms/lobby/alice",
		"chat/rooms//alice", "chat/rooms/lobby/", "chat/rooms/lo bby/alice", "chat/dm/bob", "chat/presence/$x",
		"chat/nope/x", "chat/sync/a/b",
	} {
		if got, err := ParseTopic(topic); err == nil {
			t.Errorf("ParseTopic(%q) = %+v, want an error", topic, got)
		}
	}
}

func TestConversation(t *testing.T) {
	ab := Conversation(Topic{Kind: KindDM, Recipient: "bob", User: "alice"})
	ba := Conversation(Topic{Kind: KindDM, Recipient: "alice", User: "bob"})
	if ab != ba || ab != "@alice,bob" {
		t.Fatalf("DM conversation keys %q and %q, want both @alice,bob", ab, ba)
	}
	a, b, ok := ParseDMConversation(ab)
	if !ok || a != "alice" || b != "bob" {
		t.Fatalf("ParseDMConversation(%q) = %q %q %v", ab, a, b, ok)
	}
	if _, _, ok := ParseDMConversation("lobby"); ok {
		t.Fatal("a room name parsed as a DM conversation")
	}
	if got := Conversation(Topic{Kind: KindRoom, Room: "lobby", User: "x"}); got != "lobby" {
		t.Fatalf("room conversation %q", got)
	}
}

func TestDecodeEnvelope(t *testing.T) {
	good := Envelope{V: Version, ID: "alice-1-1", Room: "lobby", From: "alice", Seq: 1, SentNS: 5, Body: "hi"}
	b, err := good.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeEnvelope(b, 0)
	if err != nil || got != good {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	tests := []struct {
		name    string
		payload string
		limit   int
	}{
		{"not json", "hello", 0},
		{"truncated", `{"v":1,"id":"x"`, 0},
		{"wrong version", `{"v":2,"id":"x","from":"a","sent_ns":1,"body":""}`, 0},
		{"no id", `{"v":1,"from":"a","sent_ns":1,"body":""}`, 0},
		{"bad from", `{"v":1,"id":"x","from":"a/b","sent_ns":1,"body":""}`, 0},
		{"bad room", `{"v":1,"id":"x","from":"a","room":"#","sent_ns":1,"body":""}`, 0},
		{"bad kind", `{"v":1,"id":"x","kind":"zap","from":"a","sent_ns":1,"body":""}`, 0},
		{"invalid utf8", "{\"v\":1,\"id\":\"x\",\"from\":\"a\",\"body\":\"\xff\"}", 0},
		{"over limit", string(b), len(b) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeEnvelope([]byte(tt.payload), tt.limit); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeEnvelope error %v, want ErrMalformed", err)
			}
		})
	}
}

func TestDecodePresence(t *testing.T) {
	if p, err := DecodePresence([]byte(`{"v":1,"user":"bob","status":"online","rooms":["lobby"],"at_ns":3}`)); err != nil || p.User != "bob" || p.Status != Online {
		t.Fatalf("DecodePresence: %+v %v", p, err)
	}
	for _, bad := range []string{`{`, `{"v":1,"user":"bob","status":"away"}`, `{"v":1,"user":"","status":"online"}`} {
		if _, err := DecodePresence([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodePresence(%s) = %v, want ErrMalformed", bad, err)
		}
	}
}

func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"x","from":"a","room":"r","sent_ns":1,"body":"hi"}`))
	f.Add([]byte("plain text"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeEnvelope(b, 0)
		if err != nil {
			return
		}
		if verr := e.Validate(); verr != nil {
			t.Fatalf("decoded envelope fails Validate: %v", verr)
		}
	})
}

// BenchmarkParseTopic is the check the broker (several hooks) and every
// node run on each message's topic.
func BenchmarkParseTopic(b *testing.B) {
	topic := RoomTopic("lobby", "alice")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTopic(topic); err != nil {
			b.Fatal(err)
		}
	}
}
