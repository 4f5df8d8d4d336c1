package broker

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/roomlog"
	"github.com/distchat/distchat/broker/wire"
)

func TestFilterMatches(t *testing.T) {
	dm := []string{"chat", "dm", "bob", "alice"}
	anyRoom := []string{"chat", "rooms", "", ""}
	tests := []struct {
		filter string
		topic  []string
		want   bool
	}{
		{"chat/dm/bob/+", dm, true},
		{"chat/dm/bob/alice", dm, true},
		{"chat/dm/bob/carol", dm, false},
		{"chat/dm/carol/+", dm, false},
		{"chat/#", dm, true},
		{"#", dm, true},
		{"+/dm/+/+", dm, true},
		{"chat/dm/+", dm, false},
		{"chat/dm/bob/alice/x", dm, false},
		{"$share/g/chat/dm/bob/+", dm, false},
		{"chat/rooms/lobby/+", anyRoom, true},
		{"chat/rooms/lobby/alice", anyRoom, true}, // the sender is not known yet
		{"chat/rooms/+/+", anyRoom, true},
		{"chat/dm/+/+", anyRoom, false},
		{"app/alerts", anyRoom, false},
	}
	for _, tt := range tests {
		if got := filterMatches(tt.filter, tt.topic); got != tt.want {
			t.Errorf("filterMatches(%q, %v) = %v, want %v", tt.filter, tt.topic, got, tt.want)
		}
	}
}

// fakeLog is a room log of stamped records held in memory.
type fakeLog map[string][]roomlog.Record

func (f fakeLog) add(t *testing.T, conv string, e wire.Envelope) {
	t.Helper()
	e.V, e.ID, e.RoomSeq = wire.Version, fmt.Sprint(conv, len(f[conv])+1), uint64(len(f[conv])+1)
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	f[conv] = append(f[conv], roomlog.Record{Seq: e.RoomSeq, TimeNS: 1e9 * int64(e.RoomSeq), Data: b})
}

func (f fakeLog) Routed() map[string]uint64 {
	out := map[string]uint64{}
	for c, recs := range f {
		out[c] = uint64(len(recs))
	}
	return out
}

func (f fakeLog) Records(conv string, after uint64, limit int) ([]roomlog.Record, error) {
	recs := f[conv]
	if after >= uint64(len(recs)) {
		return nil, nil
	}
	return recs[after:min(uint64(len(recs)), after+uint64(limit))], nil
}

// TestRequeue: a persistent session is owed the records above Routed and
// those its marks list as queued, on topics its subscriptions match at
// QoS 1, not those the store holds already, under packet ids it does not
// use, and no more than limits.max_inflight in flight; sessions that end
// with their connection, and QoS 0 subscriptions, are owed nothing.
func TestRequeue(t *testing.T) {
	log := fakeLog{}
	dm := wire.DMConversation("alice", "bob")
	for i := range 5 {
		log.add(t, "lobby", wire.Envelope{Room: "lobby", From: "alice", Body: fmt.Sprint(i)})
		from, to := "alice", "bob"
		if i%2 == 1 {
			from, to = to, from
		}
		log.add(t, dm, wire.Envelope{To: to, From: from, Body: fmt.Sprint(i)}) // #1, #3, #5 to bob
	}
	log.add(t, "other", wire.Envelope{Room: "other", From: "alice", Body: "x"})
	marks := sessionMarks{
		Routed:   map[string]uint64{"lobby": 3, dm: 2, "other": 0},
		Sessions: map[string]*markedSession{"bob-dev": {Queued: map[string][]uint64{"lobby": {2}, dm: {1}}}},
	}
	clients := []storage.Client{
		{ID: "bob-dev", ProtocolVersion: 4},
		{ID: "clean", ProtocolVersion: 4, Clean: true},
		{ID: "v5-no-expiry", ProtocolVersion: 5},
		{ID: "qos0", ProtocolVersion: 4},
	}
	var subs []storage.Subscription
	for _, id := range []string{"bob-dev", "clean", "v5-no-expiry"} {
		subs = append(subs, storage.Subscription{Client: id, Filter: "chat/dm/bob/+", Qos: 1},
			storage.Subscription{Client: id, Filter: "chat/rooms/lobby/+", Qos: 1})
	}
	subs = append(subs, storage.Subscription{Client: "qos0", Filter: "chat/#", Qos: 0})
	stored := []storage.Message{
		{Client: "bob-dev", PacketID: 1, TopicName: "app/alerts", Payload: []byte("x")},
		{Client: "bob-dev", PacketID: 2, TopicName: wire.RoomTopic("lobby", "alice"), Payload: log["lobby"][3].Data}, // #4, held
	}
	tests := []struct {
		maxInflight int
		want        []string
	}{
		{0, []string{"@alice,bob#1", "@alice,bob#3", "@alice,bob#5", "lobby#2", "lobby#5"}},
		{4, []string{"@alice,bob#1", "@alice,bob#3"}},
		{2, nil},
	}
	for _, tt := range tests {
		out, sessions := requeue(log, marks, clients, subs, stored, tt.maxInflight)
		var got []string
		ids := map[uint16]bool{1: true, 2: true}
		for _, m := range out {
			conv, seq, ok := chatRecord(m.TopicName, m.Payload)
			if m.Client != "bob-dev" || !ok || m.FixedHeader.Qos != 1 || ids[m.PacketID] || m.PacketID == 0 {
				t.Errorf("max %d: message %+v: want bob-dev's, QoS 1, a chat record, a packet id of its own", tt.maxInflight, m)
			}
			if strings.HasPrefix(m.TopicName, "chat/dm/") && m.TopicName != wire.DMTopic("bob", "alice") {
				t.Errorf("max %d: a DM on %s, not one to bob", tt.maxInflight, m.TopicName)
			}
			ids[m.PacketID] = true
			got = append(got, fmt.Sprint(conv, "#", seq))
		}
		if !slices.Equal(got, tt.want) || (sessions == 1) != (len(tt.want) > 0) {
			t.Errorf("max %d: requeued %v for %d sessions, want %v", tt.maxInflight, got, sessions, tt.want)
		}
	}
}

func FuzzDecodeMarks(f *testing.F) {
	f.Add([]byte(`{"routed":{"lobby":3},"sessions":{"bob-dev":{"client":{"id":"bob-dev"},"subs":[{"filter":"chat/dm/bob/+","qos":1}],"queued":{"lobby":[2]}}}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"sessions":{"x":null}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMarks(b)
		if err != nil {
			return
		}
		// Whatever decodes is usable: recovery must not panic on it.
		log := fakeLog{}
		log.add(t, "lobby", wire.Envelope{Room: "lobby", From: "alice", Body: "x"})
		var clients []storage.Client
		var subs []storage.Subscription
		for id, s := range m.Sessions {
			if s == nil {
				t.Fatalf("session %q decoded as nil", id)
			}
			clients = append(clients, storage.Client{ID: id, ProtocolVersion: 4})
			for _, sub := range s.Subs {
				sub.Client = id
				subs = append(subs, sub)
			}
		}
		requeue(log, m, clients, subs, nil, 10)
	})
}

// TestNoMarksFileOwesNothing: without a marks file (a new data directory,
// or one from a broker without session marks) the log's positions at start
// stand for the marks, so a session is not given the log's history; with
// a file, what it says is owed.
func TestNoMarksFileOwesNothing(t *testing.T) {
	log := fakeLog{}
	for range 3 {
		log.add(t, "lobby", wire.Envelope{Room: "lobby", From: "alice", Body: "x"})
	}
	clients := []storage.Client{{ID: "bob-dev", ProtocolVersion: 4}}
	subs := []storage.Subscription{{Client: "bob-dev", Filter: wire.RoomFilter("lobby"), Qos: 1}}
	path := filepath.Join(t.TempDir(), marksFile)
	k := newMarksKeeper(log, mqtt.New(nil), path, logrus.NewEntry(logrus.New()))
	if got, _ := requeue(log, k.marks(), clients, subs, nil, 0); len(got) != 0 {
		t.Errorf("no marks file: %d messages owed, want none", len(got))
	}
	if err := writeMarks(path, []byte(`{"routed":{"lobby":1}}`)); err != nil {
		t.Fatal(err)
	}
	k = newMarksKeeper(log, mqtt.New(nil), path, logrus.NewEntry(logrus.New()))
	if got, _ := requeue(log, k.marks(), clients, subs, nil, 0); len(got) != 2 {
		t.Errorf("marks at #1: %d messages owed, want 2", len(got))
	}
}
