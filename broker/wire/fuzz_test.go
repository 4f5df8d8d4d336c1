package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// The fuzz targets of the wire contract. Their seeds are the f.Add calls and
// testdata/fuzz/<target>/ (inputs that once broke a property); plain go test
// runs both, make fuzz searches for more.

// FuzzEnvelopeRoundTrip: what DecodeEnvelope accepts is a valid envelope
// that encodes and decodes back to itself, and nothing over the limit is
// accepted.
func FuzzEnvelopeRoundTrip(f *testing.F) {
	good, err := Envelope{V: Version, ID: "alice-1-1", Room: "lobby", From: "alice", Boot: 7, Seq: 1, SentNS: 5, Body: "hi", RoomSeq: 3, BrokerNS: 9}.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good, 0)
	f.Add([]byte(`{"v":1,"id":"x","kind":"me","to":"bob","from":"alice","sent_ns":1,"body":"waves","pad":"xxxx"}`), 0)
	f.Add([]byte(`{"v":1,"id":"x","from":"a","sent_ns":1,"body":"\u00e9\ud83d\ude00"}`), 40)
	f.Add([]byte(`{"v":1,"id":"x","from":"a","room":"r","sent_ns":1e3,"body":""}`), 0)
	f.Add([]byte(`{"v":1,"id":"x","from":"a","from":"$b","sent_ns":1,"body":""}`), 0)
	f.Add([]byte("plain text"), 0)
	f.Fuzz(func(t *testing.T, payload []byte, limit int) {
		e, err := DecodeEnvelope(payload, limit)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if max := limit; max <= 0 && len(payload) > MaxPayloadBytes || max > 0 && len(payload) > max {
			t.Fatalf("accepted %d bytes over the limit %d", len(payload), limit)
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoded envelope fails Validate: %v", err)
		}
		b, err := e.Encode()
		if err != nil {
			t.Fatalf("decoded envelope does not encode: %v", err)
		}
		back, err := DecodeEnvelope(b, len(b))
		if err != nil {
			t.Fatalf("re-encoded envelope %s does not decode: %v", b, err)
		}
		if back != e {
			t.Fatalf("round trip changed the envelope: %+v, then %+v", e, back)
		}
	})
}

// FuzzParseTopic: a topic ParseTopic accepts re-renders, with the topic
// helpers, to the same string, and every name in it is valid.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{
		RoomTopic("lobby", "alice"), DMTopic("bob", "alice"), PresenceTopic("carol"), SyncTopic("dave"),
		InboxTopic("dave"), "chat", "chat/", "chat/rooms/+/+", "chat/rooms//x", "chat/dm/a/b/c", "$SYS/x",
		"chat/rooms/Zoë/東京", "chat/presence/a\u200bb", "chat/rooms/@alice,bob/eve",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		tp, err := ParseTopic(topic)
		if err != nil {
			if tp != (Topic{}) {
				t.Fatalf("error %v with a non-zero topic %+v", err, tp)
			}
			return
		}
		var again string
		switch tp.Kind {
		case KindRoom:
			again = RoomTopic(tp.Room, tp.User)
		case KindDM:
			again = DMTopic(tp.Recipient, tp.User)
		case KindPresence:
			again = PresenceTopic(tp.User)
		case KindSync:
			again = SyncTopic(tp.User)
		case KindInbox:
			again = InboxTopic(tp.User)
		default:
			t.Fatalf("accepted %q as kind %s", topic, tp.Kind)
		}
		if again != topic {
			t.Fatalf("%q parses to %+v, which renders as %q", topic, tp, again)
		}
		for kind, name := range map[string]string{"room": tp.Room, "recipient": tp.Recipient, "user": tp.User} {
			if name != "" || kind == "user" {
				if err := ValidateName(kind, name); err != nil {
					t.Fatalf("%q holds the invalid %s %q: %v", topic, kind, name, err)
				}
			}
		}
		if strings.ContainsAny(topic, "+#\x00") {
			t.Fatalf("accepted %q with a wildcard or NUL", topic)
		}
		if conv := Conversation(tp); (tp.Kind == KindRoom || tp.Kind == KindDM) && conv == "" {
			t.Fatalf("%q has no conversation", topic)
		}
	})
}

// FuzzDMConversation: a DM conversation key names its two users once and
// for all: built from any two valid names it parses back to them, in byte
// order, the same whichever of them builds it; and no valid room name is a
// DM conversation key (a room must never share a DM's log).
func FuzzDMConversation(f *testing.F) {
	f.Add("alice", "bob")
	f.Add("bob", "alice")
	f.Add("a", "a")
	f.Add("Zoë", "東京")
	f.Add("@alice", "bob")
	f.Add("a,b", "c")
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, key := range []string{a, b} {
			if ValidateName("room", key) == nil {
				if x, y, ok := ParseDMConversation(key); ok {
					t.Fatalf("the valid room name %q parses as the DM conversation of %q and %q", key, x, y)
				}
			}
			// Any key: what parses renders back.
			if x, y, ok := ParseDMConversation(key); ok && "@"+x+","+y != key {
				t.Fatalf("%q parses to %q, %q", key, x, y)
			}
		}
		if ValidateName("user", a) != nil || ValidateName("user", b) != nil {
			return
		}
		key := DMConversation(a, b)
		if other := DMConversation(b, a); other != key {
			t.Fatalf("DMConversation(%q, %q) = %q but the other way round %q", a, b, key, other)
		}
		x, y, ok := ParseDMConversation(key)
		lo, hi := min(a, b), max(a, b)
		if !ok || x != lo || y != hi {
			t.Fatalf("DMConversation(%q, %q) = %q parses to %q, %q, %v", a, b, key, x, y, ok)
		}
	})
}

// FuzzValidateName: a valid name is one MQTT topic level that shows as what
// it is: short, UTF-8, no wildcard, separator, control, space, or invisible
// character, no '$' first; an invalid one gets a one-line error.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{
		"alice", "Zoë", "", "$SYS", "a/b", "a+b", "#", "a b", "a\tb", "\xff", "a\u200bb", "\ufeffx", "a\u202eb",
		"\u3164", "@alice,bob", "a,b", strings.Repeat("é", 40),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateName("room", name)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("error %v does not wrap ErrInvalidName", err)
			}
			if msg := err.Error(); strings.ContainsAny(msg, "\n\r") || !utf8.ValidString(msg) {
				t.Fatalf("error %q is not one line of UTF-8", msg)
			}
			return
		}
		if name == "" || len(name) > MaxNameBytes || !utf8.ValidString(name) || name[0] == '$' || name[0] == '@' {
			t.Fatalf("accepted %q", name)
		}
		for _, r := range name {
			if strings.ContainsRune("+#/,", r) || unicode.IsControl(r) || unicode.IsSpace(r) ||
				unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Bidi_Control, r) || invisibleRunes[r] || r == utf8.RuneError {
				t.Fatalf("accepted %q with %U", name, r)
			}
		}
		if tp, err := ParseTopic(RoomTopic(name, name)); err != nil || tp.Room != name || tp.User != name {
			t.Fatalf("valid name %q does not make a topic level: %+v, %v", name, tp, err)
		}
	})
}

// acceptedSyncRequest decodes a catch-up request as the broker's room log
// does (broker/roomlog serveSync).
func acceptedSyncRequest(payload []byte) (SyncRequest, bool) {
	var req SyncRequest
	if err := json.Unmarshal(payload, &req); err != nil || req.V != Version || len(req.ReqID) > 128 {
		return SyncRequest{}, false
	}
	return req, true
}

// FuzzSyncRequest: a request the broker accepts keeps its meaning through
// an encode and decode (a node's retry sends it again), and what the broker
// would do with its conversation is settled by the key alone.
func FuzzSyncRequest(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"req_id":"r1","conv":"lobby","after_seq":4}`,
		`{"v":1,"req_id":"r2","conv":"@alice,bob","after_seq":0,"limit":10}`,
		`{"v":1,"req_id":"r3","conv":"lobby","last":20}`,
		`{"v":1,"req_id":"","conv":"","after_seq":-1,"limit":-5}`,
		`{"v":2,"req_id":"x"}`, `{"v":1,"after_seq":18446744073709551615}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		req, ok := acceptedSyncRequest(payload)
		if !ok {
			return
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("accepted request %+v does not encode: %v", req, err)
		}
		back, ok := acceptedSyncRequest(b)
		if !ok || !reflect.DeepEqual(back, req) {
			t.Fatalf("request %+v comes back from %s as %+v (accepted %v)", req, b, back, ok)
		}
		if a, bb, dm := ParseDMConversation(req.Conv); dm && ValidateName("user", a) == nil && ValidateName("user", bb) == nil &&
			a <= bb && DMConversation(a, bb) != req.Conv {
			t.Fatalf("conversation %q of valid users %q, %q is not their key", req.Conv, a, bb)
		}
	})
}

// FuzzSyncReply: a reply decodes as the node decodes it (chatnode/session)
// into a value that survives an encode and decode unchanged, and the
// messages in it that pass Validate round-trip as envelopes.
func FuzzSyncReply(f *testing.F) {
	for _, s := range []string{
		`{"v":1,"req_id":"r1","conv":"lobby","messages":[{"v":1,"id":"a-1","room":"lobby","from":"a","sent_ns":1,"body":"hi","room_seq":1}],"last_seq":1,"more":false}`,
		`{"v":1,"req_id":"r2","conv":"lobby","messages":[],"last_seq":9,"more":true,"joined_seq":7}`,
		`{"v":1,"req_id":"r3","conv":"@a,b","messages":null,"error":"not a party to this conversation"}`,
		`{"v":1,"messages":[{}],"joined_seq":null}`, `{"messages":[1]}`, `{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var rep SyncReply
		if err := json.Unmarshal(payload, &rep); err != nil {
			return
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatalf("decoded reply %+v does not encode: %v", rep, err)
		}
		// An empty list and no list encode alike (omitempty), so what must
		// hold is that the encoding survives a decode: the same bytes again.
		var back SyncReply
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("reply %+v encodes as %s, which does not decode: %v", rep, b, err)
		}
		if b2, err := json.Marshal(back); err != nil || !bytes.Equal(b2, b) {
			t.Fatalf("reply %+v encodes as %s, decoded and encoded again as %s (%v)", rep, b, b2, err)
		}
		for _, e := range rep.Messages {
			if e.Validate() != nil {
				continue
			}
			enc, err := e.Encode()
			if err != nil {
				t.Fatalf("valid message %+v does not encode: %v", e, err)
			}
			if got, err := DecodeEnvelope(enc, len(enc)); err != nil || got != e {
				t.Fatalf("valid message %+v comes back as %+v, %v", e, got, err)
			}
		}
	})
}
