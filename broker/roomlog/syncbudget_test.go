package roomlog_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/distchat/distchat/broker"
	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// rawSession is an MQTT connection driven packet by packet: a client that
// asks and never reads, or that sets MQTT 5 properties paho cannot.
type rawSession struct {
	t    *testing.T
	conn net.Conn
}

func dialSession(t *testing.T, addr, user string, version byte, props packets.Properties) *rawSession {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s := &rawSession{t: t, conn: conn}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: version,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: user, Keepalive: 60, Clean: true,
			UsernameFlag: true, Username: []byte(user), PasswordFlag: true, Password: []byte(user + "-pw")}}
	pk.Properties = props
	s.send(pk, pk.ConnectEncode)
	if ack := s.readPacket(); ack[0] != 0x20 {
		t.Fatalf("CONNACK % x", ack)
	}
	sub := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe, Qos: 1}, ProtocolVersion: version, PacketID: 1}
	sub.Filters = packets.Subscriptions{{Filter: wire.InboxTopic(user), Qos: 0}, {Filter: wire.RoomFilter("lobby"), Qos: 1}}
	s.send(sub, sub.SubscribeEncode)
	if ack := s.readPacket(); ack[0] != 0x90 {
		t.Fatalf("SUBACK % x", ack)
	}
	return s
}

func (s *rawSession) send(pk packets.Packet, encode func(*bytes.Buffer) error) {
	s.t.Helper()
	var buf bytes.Buffer
	if err := encode(&buf); err != nil {
		s.t.Fatal(err)
	}
	if err := s.conn.SetWriteDeadline(time.Now().Add(wait)); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.conn.Write(buf.Bytes()); err != nil {
		s.t.Fatal(err)
	}
}

// readPacket returns one whole packet, fixed header included.
func (s *rawSession) readPacket() []byte {
	s.t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		s.t.Fatal(err)
	}
	head := []byte{0}
	if _, err := io.ReadFull(s.conn, head); err != nil {
		s.t.Fatalf("read: %v", err)
	}
	n, mult := 0, 1
	for {
		b := []byte{0}
		if _, err := io.ReadFull(s.conn, b); err != nil {
			s.t.Fatalf("read: %v", err)
		}
		head = append(head, b[0])
		n += int(b[0]&0x7f) * mult
		if mult *= 128; b[0]&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(s.conn, body); err != nil {
		s.t.Fatalf("read: %v", err)
	}
	return append(head, body...)
}

// TestSyncFloodFromClientThatDoesNotRead: bob sends thousands of catch-up
// requests for a room of large messages and reads none of the replies. The
// reply bytes queued towards him stay within max_pending_sync_bytes plus a
// page, and the requests past it are dropped and counted, not served.
func TestSyncFloodFromClientThatDoesNotRead(t *testing.T) {
	const requests = 2000
	cfg := brokertest.Config(t)
	cfg.Auth.Users = brokertest.Users(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw"}, "lobby")
	cfg.RoomLog.MaxPendingSyncBytes = 2 * cfg.RoomLog.MaxPayload
	cfg.Limits.WriteTimeout = time.Minute // the stall is the subject, not the cure
	b := brokertest.Start(t, cfg)
	alice := connect(t, b.Addr, "alice")
	var topics []string
	for range 20 {
		topics = append(topics, wire.RoomTopic("lobby", "alice"))
	}
	publishAll(t, alice, topics, bytes.Repeat([]byte("a"), 30*1024))

	bob := dialSession(t, b.Addr, "bob", 4, packets.Properties{})
	req, err := json.Marshal(wire.SyncRequest{V: wire.Version, ReqID: "r", Conv: "lobby"})
	if err != nil {
		t.Fatal(err)
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, ProtocolVersion: 4,
		TopicName: wire.SyncTopic("bob"), Payload: req}
	var flood bytes.Buffer
	for range requests {
		if err := pk.PublishEncode(&flood); err != nil {
			t.Fatal(err)
		}
	}
	bob.send(pk, func(w *bytes.Buffer) error { _, err := w.Write(flood.Bytes()); return err })
	bound := int64(cfg.RoomLog.MaxPendingSyncBytes + 2*cfg.RoomLog.MaxPayload + 4096)
	st := waitStats(t, b, "every request answered or dropped", func(st broker.Stats) bool {
		if p := st.RoomLog.PendingSyncBytes; p > bound {
			t.Fatalf("%d reply bytes queued, over the bound %d", p, bound)
		}
		return st.RoomLog.SyncsServed+st.RoomLog.SyncsThrottled >= requests
	}).RoomLog
	// What the kernel's socket buffers absorb is served; the rest is not.
	if st.SyncsThrottled < requests/2 {
		t.Errorf("%d of %d requests throttled, %d served; want most throttled", st.SyncsThrottled, requests, st.SyncsServed)
	}
	t.Logf("%d requests: %d served, %d throttled, %d bytes pending", requests, st.SyncsServed, st.SyncsThrottled, st.PendingSyncBytes)

	// A client that reads is served at the pace it reads.
	if r := syncOnce(t, alice, "alice", wire.SyncRequest{Conv: "lobby", Limit: 1}); len(r.Messages) != 1 {
		t.Errorf("alice, who reads, got %d messages", len(r.Messages))
	}
}

// TestMessageOverSubscribersMaximumPacketSizeIsCounted: an MQTT 5
// subscriber that allows packets of at most 1 KiB does not get a 4 KiB
// message (MQTT forbids sending it); the drop is counted in /stats and
// logged, never silent, and does not stay in flight; a small message still
// reaches it.
func TestMessageOverSubscribersMaximumPacketSizeIsCounted(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = brokertest.Users(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw"}, "lobby")
	cfg.LogLevel = "warn"
	var lines brokertest.Lines
	b := brokertest.StartLogged(t, cfg, &lines)
	bob := dialSession(t, b.Addr, "bob", 5, packets.Properties{MaximumPacketSize: 1024})
	alice := connect(t, b.Addr, "alice")
	publish(t, alice, wire.RoomTopic("lobby", "alice"), []byte(strings.Repeat("x", 4096)))
	publish(t, alice, wire.RoomTopic("lobby", "alice"), []byte("small"))
	lines.Wait(t, wait, func(m map[string]any) bool {
		return m["event"] == "message_dropped" && m["cause"] == broker.DropPacketTooLarge && m["client_id"] == "bob"
	})
	if got := b.Server.Stats().Drops[broker.DropPacketTooLarge]; got != 1 {
		t.Errorf("drops[%s] = %d, want 1", broker.DropPacketTooLarge, got)
	}
	got := bob.readPacket()
	if got[0]>>4 != 3 || !bytes.Contains(got, []byte(`"body":"small"`)) || len(got) > 1024 {
		t.Fatalf("bob's next packet (%d bytes) is not the small message: %q", len(got), fmt.Sprintf("%.80s", got))
	}
	i := 1
	for got[i]&0x80 != 0 {
		i++
	}
	topicLen := int(got[i+1])<<8 | int(got[i+2])
	i += 3 + topicLen // past the remaining length and the topic, to the packet id
	bob.send(packets.Packet{}, func(w *bytes.Buffer) error { _, err := w.Write([]byte{0x40, 2, got[i], got[i+1]}); return err })
	waitStats(t, b, "nothing left in flight once bob acknowledged the small message", func(st broker.Stats) bool { return st.Inflight == 0 })
}

// TestSyncBudgetFollowsTopicAliases: Mochi sends an MQTT 5 client that
// allows topic aliases a topic's name once and then only its alias; the
// replies it reads are still given back, so a client that reads is never
// throttled.
func TestSyncBudgetFollowsTopicAliases(t *testing.T) {
	cfg := brokertest.Config(t)
	b := brokertest.Start(t, cfg)
	bob := dialSession(t, b.Addr, "bob", 5, packets.Properties{TopicAliasMaximum: 10})
	req, err := json.Marshal(wire.SyncRequest{V: wire.Version, ReqID: "r", List: true})
	if err != nil {
		t.Fatal(err)
	}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, ProtocolVersion: 5,
		TopicName: wire.SyncTopic("bob"), Payload: req}
	for i := range 3 {
		bob.send(pk, pk.PublishEncode)
		reply := bob.readPacket()
		if aliased := !bytes.Contains(reply, []byte(wire.InboxTopic("bob"))); aliased != (i > 0) {
			t.Fatalf("reply %d: aliased %v; the test needs Mochi to alias every reply after the first", i, aliased)
		}
	}
	waitStats(t, b, "every reply read and given back", func(st broker.Stats) bool {
		return st.RoomLog.SyncsServed == 3 && st.RoomLog.PendingSyncBytes == 0
	})
}
