package roomlog_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker"
	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/roomlog"
	"github.com/distchat/distchat/broker/wire"
)

// publishAll sends every (topic, payload) at QoS 1 without waiting for each
// PUBACK in turn, then waits for them all: a flood, as a hostile client
// sends it.
func publishAll(t *testing.T, c paho.Client, topics []string, payload []byte) {
	t.Helper()
	toks := make([]paho.Token, 0, len(topics))
	for _, topic := range topics {
		toks = append(toks, c.Publish(topic, 1, false, payload))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topics[i], tok.Error())
		}
	}
}

// waitStats polls the broker's counters until cond holds.
func waitStats(t *testing.T, b *brokertest.Broker, what string, cond func(broker.Stats) bool) broker.Stats {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		st := b.Server.Stats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached; stats %+v", what, *st.RoomLog)
		}
		time.Sleep(5 * time.Millisecond) // polling a counter, not synchronising
	}
}

// TestDMsToUnknownUsersStartNoConversation: with users configured, a DM to a
// name that is no user is acknowledged, discarded and counted; only the DM
// to a real user is stored.
func TestDMsToUnknownUsersStartNoConversation(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = brokertest.Users(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw"})
	b := brokertest.Start(t, cfg)
	alice := connect(t, b.Addr, "alice")
	var topics []string
	for i := range 500 {
		topics = append(topics, wire.DMTopic(fmt.Sprintf("ghost%d", i), "alice"))
	}
	publishAll(t, alice, append(topics, wire.DMTopic("bob", "alice")), []byte("hi"))
	st := b.Server.Stats().RoomLog
	if got := st.Refused[roomlog.RefusedUnknownRecipient]; got != 500 {
		t.Errorf("refused unknown_recipient = %d, want 500", got)
	}
	if st.Conversations != 1 || st.Appended != 1 {
		t.Errorf("conversations %d, appended %d; want only alice–bob's, 1 message", st.Conversations, st.Appended)
	}
	if r := syncOnce(t, alice, "alice", wire.SyncRequest{List: true}); len(r.Convs) != 1 {
		t.Errorf("alice's conversations: %+v, want only the one with bob", r.Convs)
	}
}

// TestConversationCapsHold: in open mode (any name is a user) a flood of DMs
// to 30 000 made-up recipients starts no more conversations than the sender's
// cap, and a second sender stops at the global cap; known conversations
// still take messages.
func TestConversationCapsHold(t *testing.T) {
	const perUser, total, flood = 50, 80, 30000
	cfg := brokertest.Config(t)
	cfg.RoomLog.MaxConversationsPerUser, cfg.RoomLog.MaxConversations = perUser, total
	b := brokertest.Start(t, cfg)
	mallory := connect(t, b.Addr, "mallory")
	topics := make([]string, 0, flood)
	for i := range flood {
		topics = append(topics, wire.DMTopic(fmt.Sprintf("u%d", i), "mallory"))
	}
	heapBefore := heapInUse()
	publishAll(t, mallory, topics, []byte("x"))
	// Without the caps this flood kept about 175 MB; the bound here is loose
	// (the test's own client shares the heap) but far below that.
	if grown := heapInUse() - heapBefore; grown > 40<<20 {
		t.Errorf("the heap grew by %d MB over %d DMs to made-up names", grown>>20, flood)
	} else {
		t.Logf("heap grew by %.1f MB over %d DMs to made-up names", float64(grown)/(1<<20), flood)
	}
	st := b.Server.Stats().RoomLog
	if st.Conversations != perUser || st.Refused[roomlog.RefusedUserConversations] != flood-perUser {
		t.Errorf("after %d DMs: %d conversations, %d refused per user; want %d, %d",
			flood, st.Conversations, st.Refused[roomlog.RefusedUserConversations], perUser, flood-perUser)
	}
	trent := connect(t, b.Addr, "trent")
	var rooms []string
	for i := range 100 {
		rooms = append(rooms, wire.RoomTopic(fmt.Sprintf("r%d", i), "trent"))
	}
	publishAll(t, trent, rooms, []byte("x"))
	st = b.Server.Stats().RoomLog
	if st.Conversations != total || st.Refused[roomlog.RefusedMaxConversations] != 100-(total-perUser) {
		t.Errorf("second sender: %d conversations, %d refused globally; want %d, %d",
			st.Conversations, st.Refused[roomlog.RefusedMaxConversations], total, 100-(total-perUser))
	}
	before := st.Appended
	publishAll(t, mallory, topics[:1], []byte("still there"))
	if got := b.Server.Stats().RoomLog.Appended; got != before+1 {
		t.Errorf("a message to a known conversation: appended %d → %d, want +1", before, got)
	}
}

// TestStampedRecordWithinPacketSize: texts of characters JSON escapes grow
// up to six times when the log re-encodes them; a record that would exceed
// limits.max_packet_size is refused like an oversized message, starts no
// conversation, and an ordinary one passes.
func TestStampedRecordWithinPacketSize(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Limits.MaxPacketSize = 128 * 1024
	b := brokertest.Start(t, cfg)
	alice := connect(t, b.Addr, "alice")
	// env writes body unescaped, as any JSON encoder but Go's may.
	env := func(body string) []byte {
		p, err := json.Marshal(wire.Envelope{V: wire.Version, ID: "e" + fmt.Sprint(len(body)), From: "alice", Kind: wire.KindMessage, Body: "BODY"})
		if err != nil {
			t.Fatal(err)
		}
		return bytes.Replace(p, []byte("BODY"), []byte(body), 1)
	}
	tests := []struct {
		name    string
		payload []byte
		stored  bool
	}{
		{"plain text of <", bytes.Repeat([]byte("<"), 60*1024), false},
		{"envelope of raw &", env(strings.Repeat("&", 60*1024)), false},
		{"envelope of raw U+2028", env(strings.Repeat("\u2028", 21500)), false},
		{"envelope of letters", env(strings.Repeat("a", 60*1024)), true},
		{"plain text of letters", bytes.Repeat([]byte("a"), 60*1024), true},
	}
	for i, tt := range tests {
		before := b.Server.Stats().RoomLog
		room := fmt.Sprintf("room%d", i)
		publish(t, alice, wire.RoomTopic(room, "alice"), tt.payload)
		after := b.Server.Stats().RoomLog
		stored := after.Appended == before.Appended+1 && after.Conversations == before.Conversations+1
		refused := after.Refused[roomlog.RefusedOversized] == before.Refused[roomlog.RefusedOversized]+1
		if stored != tt.stored || refused == tt.stored {
			t.Errorf("%s (%d bytes): stored %v, refused %v; want stored %v", tt.name, len(tt.payload), stored, refused, tt.stored)
		}
		if r := syncOnce(t, alice, "alice", wire.SyncRequest{Conv: room}); (r.LastSeq == 1) != tt.stored {
			t.Errorf("%s: the log's last seq is %d", tt.name, r.LastSeq)
		}
	}
}

// heapInUse is the live heap after a collection, in bytes.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
