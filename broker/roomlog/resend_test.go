package roomlog_test

import (
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

func publish(t *testing.T, c paho.Client, topic string, payload []byte) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// TestResendIsStoredOnce: a publisher whose PUBACK was lost sends the same
// message again (same envelope id). The log keeps it once, under its first
// room sequence number, also when the resend comes after a broker restart;
// the resend is counted.
func TestResendIsStoredOnce(t *testing.T) {
	for _, tt := range []struct {
		name    string
		restart bool
	}{{"same run", false}, {"after a restart", true}} {
		t.Run(tt.name, func(t *testing.T) {
			b := brokertest.Start(t, brokertest.Config(t))
			env := wire.Envelope{V: wire.Version, ID: "alice-1-1", Room: "lobby", From: "alice", Seq: 1, SentNS: 1, Body: "once"}
			payload, err := env.Encode()
			if err != nil {
				t.Fatal(err)
			}
			alice := connect(t, b.Addr, "alice")
			publish(t, alice, wire.RoomTopic("lobby", "alice"), payload)
			if tt.restart {
				alice.Disconnect(100)
				b.Close()
				b = brokertest.Start(t, b.Config)
				alice = connect(t, b.Addr, "alice")
			}
			publish(t, alice, wire.RoomTopic("lobby", "alice"), payload)
			other := env
			other.ID = "alice-1-2"
			if payload, err = other.Encode(); err != nil {
				t.Fatal(err)
			}
			publish(t, alice, wire.RoomTopic("lobby", "alice"), payload)
			if got := syncAll(t, alice, "alice", "lobby"); !slices.Equal(got, []uint64{1, 2}) {
				t.Errorf("room log holds %v, want [1 2]: the resend stored once", got)
			}
			if st := b.Server.Stats().RoomLog; st == nil || st.Resent != 1 {
				t.Errorf("room log stats %+v, want resent 1", st)
			}
		})
	}
}

// TestJoinedSeqIsWhereTheSubscriptionBegan: a node new to a room asks where
// the room stands; the answer says where its subscription began, which stays
// put while messages arrive and across a repeated SUBSCRIBE (a reconnect).
func TestJoinedSeqIsWhereTheSubscriptionBegan(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	alice := connect(t, b.Addr, "alice")
	for range 2 {
		publish(t, alice, wire.RoomTopic("lobby", "alice"), []byte("before bob"))
	}
	bob := connect(t, b.Addr, "bob")
	got := make(chan struct{}, 8)
	sub := func() {
		// Mochi refuses a SUBSCRIBE whose packet id equals one of its own
		// unacknowledged deliveries to the client (0x80): ask again, as
		// the chat node does.
		for attempt := 0; ; attempt++ {
			tok := bob.Subscribe(wire.RoomFilter("lobby"), 1, func(paho.Client, paho.Message) { got <- struct{}{} })
			if !tok.WaitTimeout(wait) || tok.Error() != nil {
				t.Fatalf("subscribe: %v", tok.Error())
			}
			if code := tok.(*paho.SubscribeToken).Result()[wire.RoomFilter("lobby")]; code < 0x80 {
				return
			} else if attempt == 10 {
				t.Fatalf("subscribe refused: %#x", code)
			}
		}
	}
	sub()
	for range 3 {
		publish(t, alice, wire.RoomTopic("lobby", "alice"), []byte("after bob"))
	}
	for range 3 {
		select {
		case <-got:
		case <-time.After(wait):
			t.Fatal("bob did not get the messages")
		}
	}
	sub()
	r := syncOnce(t, bob, "bob", wire.SyncRequest{Conv: "lobby", Last: 1})
	if r.JoinedSeq == nil || *r.JoinedSeq != 2 || r.LastSeq != 5 {
		t.Fatalf("reply joined_seq %v last_seq %d, want joined 2, last 5", r.JoinedSeq, r.LastSeq)
	}
	if r := syncOnce(t, alice, "alice", wire.SyncRequest{Conv: "lobby", Last: 1}); r.JoinedSeq != nil {
		t.Errorf("alice never subscribed to lobby, yet joined_seq %d", *r.JoinedSeq)
	}
}
