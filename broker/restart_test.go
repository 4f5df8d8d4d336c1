package broker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/chatnode/wire"
)

// A persistent subscriber goes offline, messages are published, the broker
// is stopped and restarted on the same data directory, and the subscriber
// comes back to every message (Pebble in Sync mode keeps the queue), with
// an fsync per write or the write-ahead log fsynced on a timer.
func TestPersistentSessionAcrossRestart(t *testing.T) {
	for _, interval := range []time.Duration{0, 5 * time.Millisecond} {
		t.Run(fmt.Sprint("storage_fsync_interval=", interval), func(t *testing.T) {
			testPersistentSessionAcrossRestart(t, interval)
		})
	}
}

func testPersistentSessionAcrossRestart(t *testing.T, interval time.Duration) {
	const n = 20
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	cfg.StorageFsyncInterval = interval
	b := brokertest.Start(t, cfg)
	alice := clientOpts{id: "alice-laptop", user: "alice", pass: "alice-pw", persistent: true}
	sub := mustDial(t, b.URL, alice)
	subscribe(t, sub, wire.RoomFilter("lobby"), nil)
	sub.Disconnect(100)

	bob := mustDial(t, b.URL, clientOpts{id: "bob", user: "bob", pass: "bob-pw"})
	var want []msg
	for i := range n {
		id := fmt.Sprint("queued-", i)
		publish(t, bob, wire.RoomTopic("lobby", "bob"), envelope(t, "lobby", "bob", id))
		want = append(want, msg{wire.RoomTopic("lobby", "bob"), id})
	}
	bob.Disconnect(100)
	b.Close()

	b2 := brokertest.Start(t, b.Config)
	if b2.Addr != b.Addr {
		t.Fatalf("restarted on %s, want %s", b2.Addr, b.Addr)
	}
	got := make(chan msg, 2*n)
	alice.onMsg = got
	mustDial(t, b2.URL, alice)
	expect(t, got, want...)
}
