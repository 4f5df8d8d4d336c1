package broker_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// dmEnvelope is a DM from sender with the given id.
func dmEnvelope(t testing.TB, from, id string) []byte {
	t.Helper()
	b, err := wire.Envelope{V: wire.Version, ID: id, From: from, SentNS: time.Now().UnixNano(), Body: "dm " + id}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sendDMs publishes alice's DMs to bob with the given ids and returns what
// bob expects to receive.
func sendDMs(t *testing.T, url string, ids ...string) []msg {
	t.Helper()
	alice := mustDial(t, url, clientOpts{id: "alice-" + ids[0]})
	var want []msg
	for _, id := range ids {
		publish(t, alice, wire.DMTopic("bob", "alice"), dmEnvelope(t, "alice", id))
		want = append(want, msg{wire.DMTopic("bob", "alice"), id})
	}
	alice.Disconnect(100)
	return want
}

// The case of a plain MQTT 3.1.1 client with a persistent session
// (mosquitto_sub -c -i bob-dev -q 1 -t 'chat/dm/bob/+'): three DMs arrive
// while it is away, the broker stops cleanly (what SIGTERM does) and starts
// again, two more arrive; the resumed session gets all five, once each, and
// its queued message on a topic outside chat/ as well.
func TestPersistentSessionKeepsQueuedChatAcrossRestart(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	bob := clientOpts{id: "bob-dev", persistent: true}
	c := mustDial(t, b.URL, bob)
	subscribe(t, c, wire.DMFilter("bob"), nil)
	subscribe(t, c, "app/alerts", nil)
	c.Disconnect(100)

	want := sendDMs(t, b.URL, "dm-1", "dm-2", "dm-3")
	other := mustDial(t, b.URL, clientOpts{id: "app"})
	publish(t, other, "app/alerts", []byte("alert"))
	other.Disconnect(100)
	b.Close()

	b2 := brokertest.Start(t, b.Config)
	want = append(want, sendDMs(t, b2.URL, "dm-4", "dm-5")...)
	got := make(chan msg, 16)
	bob.onMsg = got
	mustDial(t, b2.URL, bob)
	expect(t, got, append(want, msg{"app/alerts", "alert"})...)
	select {
	case m := <-got:
		t.Errorf("unexpected message after the six: %+v", m)
	default:
	}
}

// A session's messages come back once only: after the resumed session has
// received and acknowledged them, a second clean restart gives nothing
// again, and the marks say why (nothing queued for it).
func TestPersistentSessionNotRequeuedOnceAcknowledged(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	bob := clientOpts{id: "bob-dev", persistent: true}
	c := mustDial(t, b.URL, bob)
	subscribe(t, c, wire.DMFilter("bob"), nil)
	c.Disconnect(100)
	want := sendDMs(t, b.URL, "dm-1", "dm-2")
	b.Close()
	if m := readMarksFile(t, b.Config.DataDir); !slices.Equal(first(m.queued("bob-dev", wire.DMConversation("alice", "bob"))), []uint64{1, 2}) ||
		m.Routed[wire.DMConversation("alice", "bob")] != 2 {
		t.Errorf("marks at a clean stop: %+v, want bob-dev's two DMs queued", m)
	}

	b2 := brokertest.Start(t, b.Config)
	got := make(chan msg, 16)
	bob.onMsg = got
	c = mustDial(t, b2.URL, bob)
	expect(t, got, want...)
	waitMarks(t, b2.Config.DataDir, "bob-dev's DMs acknowledged", func(m marks) bool {
		seqs, ok := m.queued("bob-dev", wire.DMConversation("alice", "bob"))
		return m.Routed[wire.DMConversation("alice", "bob")] == 2 && ok && len(seqs) == 0
	})
	c.Disconnect(100)
	b2.Close()

	b3 := brokertest.Start(t, b.Config)
	want = sendDMs(t, b3.URL, "dm-3")
	mustDial(t, b3.URL, bob)
	expect(t, got, want...) // dm-1 and dm-2 would come first
}

// marks is the session marks file as tests read it.
type marks struct {
	Routed   map[string]uint64
	Sessions map[string]*struct{ Queued map[string][]uint64 }
}

// queued is what the marks list as held by session in conv; ok is false
// when they do not name the session.
func (m marks) queued(session, conv string) (seqs []uint64, ok bool) {
	s := m.Sessions[session]
	if s == nil {
		return nil, false
	}
	return s.Queued[conv], true
}

func first[T any](v T, _ bool) T { return v }

func readMarksFile(t testing.TB, dataDir string) marks {
	t.Helper()
	var m marks
	b, err := os.ReadFile(filepath.Join(dataDir, "session-marks.json"))
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		t.Fatalf("session marks: %v", err)
	}
	return m
}

// waitMarks polls the marks file (written at most a second apart) until
// cond holds.
func waitMarks(t testing.TB, dataDir, what string, cond func(marks) bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		var m marks
		b, err := os.ReadFile(filepath.Join(dataDir, "session-marks.json"))
		if err == nil && json.Unmarshal(b, &m) == nil && cond(m) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session marks: %s: not reached (%s)", what, fmt.Sprint(string(b), err))
		}
		time.Sleep(20 * time.Millisecond) // polling a file the broker rewrites, not synchronising
	}
}
