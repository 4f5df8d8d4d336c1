package roomlog_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// syncOnce sends one request and returns the one reply.
func syncOnce(t *testing.T, c paho.Client, user string, req wire.SyncRequest) wire.SyncReply {
	t.Helper()
	replies := make(chan wire.SyncReply, 4)
	if tok := c.Subscribe(wire.InboxTopic(user), 1, func(_ paho.Client, m paho.Message) {
		var r wire.SyncReply
		if json.Unmarshal(m.Payload(), &r) == nil {
			replies <- r
		}
	}); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe inbox: %v", tok.Error())
	}
	req.V, req.ReqID = wire.Version, "r1"
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if tok := c.Publish(wire.SyncTopic(user), 1, false, b); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("sync: %v", tok.Error())
	}
	select {
	case r := <-replies:
		return r
	case <-time.After(wait):
		t.Fatal("no sync reply")
	}
	return wire.SyncReply{}
}

// TestSyncIsOnlyForThoseWhoMayRead: the inline client that answers catch-up
// skips ACLs, so the hook checks: bob may not read a DM between alice and
// carol, nor a room he is not granted; his own room works.
func TestSyncIsOnlyForThoseWhoMayRead(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = brokertest.Users(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw"}, "lobby")
	b := brokertest.Start(t, cfg)
	alice := connect(t, b.Addr, "alice")
	if tok := alice.Publish(wire.DMTopic("carol", "alice"), 1, false, "secret"); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if tok := alice.Publish(wire.RoomTopic("lobby", "alice"), 1, false, "hello"); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	bob := connect(t, b.Addr, "bob")
	tests := []struct {
		conv    string
		refused bool
		n       int
	}{
		{wire.DMConversation("alice", "carol"), true, 0},
		{"vault", true, 0},
		{"lobby", false, 1},
	}
	for _, tt := range tests {
		r := syncOnce(t, bob, "bob", wire.SyncRequest{Conv: tt.conv})
		if (r.Error != "") != tt.refused || len(r.Messages) != tt.n {
			t.Errorf("bob syncing %s: error %q, %d messages; want refused=%v, %d", tt.conv, r.Error, len(r.Messages), tt.refused, tt.n)
		}
	}
	carol := connect(t, b.Addr, "carol")
	if r := syncOnce(t, carol, "carol", wire.SyncRequest{Conv: wire.DMConversation("alice", "carol")}); len(r.Messages) != 1 || r.Messages[0].Body != "secret" || r.Messages[0].From != "alice" {
		t.Errorf("carol's own DM conversation: %+v", r)
	}
}

// TestDroppedMessagesAreInTheLog: a subscriber that stops acknowledging
// makes Mochi drop messages for it at its in-flight quota, silently to the
// publisher (a silent drop: docs/mochi-and-paho.md). Every one is in the room log, so
// the node repairs the gap by catch-up.
func TestDroppedMessagesAreInTheLog(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Limits.MaxInflight = 2
	b := brokertest.Start(t, cfg)
	release := make(chan struct{})
	// A subscriber whose handler blocks: paho acknowledges only after the
	// handler returns, so the broker's in-flight quota fills up.
	o := paho.NewClientOptions().AddBroker(b.URL).SetClientID("slow").SetOrderMatters(true)
	slow := connectOpts(t, o)
	if tok := slow.Subscribe(wire.RoomFilter("lobby"), 1, func(paho.Client, paho.Message) {
		<-release
	}); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	pub := connect(t, b.Addr, "alice")
	const n = 30
	for i := 0; i < n; i++ {
		if tok := pub.Publish(wire.RoomTopic("lobby", "alice"), 1, false, fmt.Sprint("m", i)); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	drops := b.Server.Stats().Drops["inflight_quota"]
	close(release)
	if drops == 0 {
		t.Fatalf("no in-flight drops counted (stats %+v): the test did not exercise the quota", b.Server.Stats().Drops)
	}
	reader := connect(t, b.Addr, "reader")
	seqs := syncAll(t, reader, "reader", "lobby")
	if len(seqs) != n || seqs[n-1] != n {
		t.Fatalf("the log has %d of %d messages (%d dropped for the slow subscriber)", len(seqs), n, drops)
	}
	t.Logf("%d messages dropped for the slow subscriber, all %d in the log", drops, n)
}

// TestSyncIntoTrimmedRecords: a node asking for records retention has
// trimmed (here by max_bytes) gets the oldest record still kept first and
// the room's last_seq: the jump from its after_seq to the first message is
// what is gone, and the room's sequence goes on.
func TestSyncIntoTrimmedRecords(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.RoomLog.MaxBytes = 10_000
	b := brokertest.Start(t, cfg)
	alice := connect(t, b.Addr, "alice")
	// A record is the body in an envelope of a few hundred bytes: 4 fit in
	// max_bytes, 5 do not.
	body := strings.Repeat("x", 2000)
	const n = 10
	for i := 0; i < n; i++ {
		publish(t, alice, wire.RoomTopic("lobby", "alice"), []byte(body))
	}
	for _, after := range []uint64{0, 2} {
		r := syncOnce(t, alice, "alice", wire.SyncRequest{Conv: "lobby", AfterSeq: after})
		var seqs []uint64
		for _, m := range r.Messages {
			seqs = append(seqs, m.RoomSeq)
		}
		if r.Error != "" || r.LastSeq != n || r.More || !slices.Equal(seqs, []uint64{7, 8, 9, 10}) {
			t.Errorf("sync after %d: error %q, last_seq %d, more %t, messages %v; want last_seq %d and 7..10",
				after, r.Error, r.LastSeq, r.More, seqs, n)
		}
	}
	if st := b.Server.Stats().RoomLog; st == nil || st.Records != 4 {
		t.Errorf("room log stats %+v, want 4 records kept", st)
	}
}

// TestStatsGroupCommits: with durability machine /stats counts the fsyncs
// and what they served; with process it shows none.
func TestStatsGroupCommits(t *testing.T) {
	for _, tc := range []struct {
		durability config.Durability
		fsyncs     bool
	}{{config.DurabilityMachine, true}, {config.DurabilityProcess, false}} {
		t.Run(tc.durability.String(), func(t *testing.T) {
			cfg := brokertest.Config(t)
			cfg.Durability = tc.durability
			b := brokertest.Start(t, cfg)
			alice := connect(t, b.Addr, "alice")
			const n = 5
			for range n {
				publish(t, alice, wire.RoomTopic("lobby", "alice"), []byte("hello"))
			}
			st := b.Server.Stats().RoomLog
			if st == nil {
				t.Fatal("no room log stats")
			}
			if !tc.fsyncs {
				if st.Fsyncs != 0 || st.AppendsPerFsync != 0 {
					t.Errorf("durability process: %d fsyncs, %.1f appends per fsync; want none", st.Fsyncs, st.AppendsPerFsync)
				}
				return
			}
			// One publisher waiting for each PUBACK: an fsync per append.
			if st.Fsyncs < n || st.AppendsPerFsync <= 0 || st.AppendsPerFsync > 1 || st.FsyncMeanMS < 0 {
				t.Errorf("durability machine: %d fsyncs, %.2f appends per fsync, mean %.3f ms; want ≥ %d fsyncs serving ≤ 1 append each",
					st.Fsyncs, st.AppendsPerFsync, st.FsyncMeanMS, n)
			}
		})
	}
}
