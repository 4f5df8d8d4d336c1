package broker_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble"
	"github.com/mochi-mqtt/server/v2/hooks/storage"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// A persistent subscriber to a room and to a topic outside chat/ goes
// offline, messages are published to both, and the broker is stopped: the
// session store holds the queued messages of the other topic and none of the
// room's (the room log is their durable record), and after a restart on the
// same data directory the subscriber gets the queued messages of both back,
// the room's from the room log.
func TestSessionStoreKeepsOnlyWhatTheRoomLogDoesNot(t *testing.T) {
	const n = 20
	b := brokertest.Start(t, brokertest.Config(t))
	sub := clientOpts{id: "watcher", persistent: true}
	c := mustDial(t, b.URL, sub)
	subscribe(t, c, wire.RoomFilter("lobby"), nil)
	subscribe(t, c, "app/alerts", nil)
	c.Disconnect(100)

	pub := mustDial(t, b.URL, clientOpts{id: "bob"})
	var want []msg
	for i := range n {
		id := fmt.Sprint("queued-", i)
		publish(t, pub, wire.RoomTopic("lobby", "bob"), envelope(t, "lobby", "bob", id))
		publish(t, pub, "app/alerts", []byte(id))
		want = append(want, msg{"app/alerts", id}, msg{wire.RoomTopic("lobby", "bob"), id})
	}
	pub.Disconnect(100)
	b.Close()

	stored := storedInflight(t, filepath.Join(b.Config.DataDir, "sessions"))
	if len(stored) != n {
		t.Errorf("session store holds %d messages in flight, want %d", len(stored), n)
	}
	for _, m := range stored {
		if m.TopicName != "app/alerts" {
			t.Errorf("session store holds a message on %s: the room log is its durable record", m.TopicName)
		}
	}

	b2 := brokertest.Start(t, b.Config)
	if got := b2.Server.Stats().RoomLog.Records; got != n {
		t.Errorf("room log holds %d records after the restart, want %d", got, n)
	}
	got := make(chan msg, 2*n)
	sub.onMsg = got
	mustDial(t, b2.URL, sub)
	expect(t, got, want...)
}

// storedInflight reads the messages in flight from a closed session store.
func storedInflight(t *testing.T, dir string) []storage.Message {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatalf("open session store: %v", err)
	}
	defer func() {
		if err := db.Close(); err != nil {
			t.Errorf("close session store: %v", err)
		}
	}()
	prefix := []byte(storage.InflightKey)
	iter, err := db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: append(prefix, 0xff)})
	if err != nil {
		t.Fatalf("read session store: %v", err)
	}
	var out []storage.Message
	for iter.First(); iter.Valid(); iter.Next() {
		var m storage.Message
		if err := m.UnmarshalBinary(iter.Value()); err != nil {
			t.Errorf("session store record %q: %v", iter.Key(), err)
		}
		out = append(out, m)
	}
	if err := iter.Close(); err != nil {
		t.Errorf("read session store: %v", err)
	}
	return out
}

// quietPebble keeps Pebble's recovery messages out of the test output.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// With the room log switched off nothing else keeps chat messages, so the
// session store keeps those in flight too.
func TestSessionStoreKeepsChatWithoutRoomLog(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.RoomLog.Enabled = false
	b := brokertest.Start(t, cfg)
	c := mustDial(t, b.URL, clientOpts{id: "watcher", persistent: true})
	subscribe(t, c, wire.RoomFilter("lobby"), nil)
	c.Disconnect(100)
	pub := mustDial(t, b.URL, clientOpts{id: "bob"})
	publish(t, pub, wire.RoomTopic("lobby", "bob"), envelope(t, "lobby", "bob", "kept"))
	pub.Disconnect(100)
	b.Close()
	stored := storedInflight(t, filepath.Join(b.Config.DataDir, "sessions"))
	if len(stored) != 1 || stored[0].TopicName != wire.RoomTopic("lobby", "bob") {
		t.Errorf("session store holds %d messages in flight (%v), want the one room message", len(stored), stored)
	}
}
