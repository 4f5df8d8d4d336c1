package roomlog_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/roomlog"
	"github.com/distchat/distchat/broker/wire"
)

// mqtt5 is the least of an MQTT 5 client a test of PUBACK reason codes
// needs: CONNECT, QoS 1 PUBLISH, and reading the PUBACK's reason code and
// Reason String (paho's Go client speaks MQTT 3.1.1 only).
type mqtt5 struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	next uint16 // the next packet identifier
}

// dial5 connects user (password <user>-pw) with MQTT 5 and a clean start.
func dial5(t *testing.T, addr, user string) *mqtt5 {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &mqtt5{t: t, conn: conn, r: bufio.NewReader(conn), next: 1}
	var vh bytes.Buffer
	putString(&vh, "MQTT")
	vh.Write([]byte{5, 0x02 | 0x80 | 0x40, 0, 60, 0}) // v5; clean start, username, password; keep alive 60 s; no properties
	putString(&vh, user)
	putString(&vh, user)
	putString(&vh, user+"-pw")
	c.write(0x10, vh.Bytes())
	typ, body := c.read()
	if typ != 0x20 || len(body) < 2 || body[1] != 0 {
		t.Fatalf("CONNACK: type %#x, body %x", typ, body)
	}
	return c
}

// publish sends a QoS 1 PUBLISH and returns its PUBACK's reason code and
// Reason String.
func (c *mqtt5) publish(topic string, payload []byte) (code byte, reason string) {
	c.t.Helper()
	id := c.next
	c.next++
	var vh bytes.Buffer
	putString(&vh, topic)
	vh.Write(binary.BigEndian.AppendUint16(nil, id))
	vh.WriteByte(0) // no properties
	vh.Write(payload)
	c.write(0x32, vh.Bytes()) // PUBLISH, QoS 1
	for {
		typ, body := c.read()
		if typ&0xf0 != 0x40 || len(body) < 2 || binary.BigEndian.Uint16(body) != id {
			continue // not this PUBACK
		}
		if len(body) == 2 {
			return 0, "" // success with no reason code
		}
		return body[2], reasonString(c.t, body[3:])
	}
}

func (c *mqtt5) write(typ byte, body []byte) {
	c.t.Helper()
	pk := append([]byte{typ}, varint(len(body))...)
	if err := c.conn.SetWriteDeadline(time.Now().Add(wait)); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(append(pk, body...)); err != nil {
		c.t.Fatalf("write packet %#x: %v", typ, err)
	}
}

// read returns the next packet's first byte and its body.
func (c *mqtt5) read() (byte, []byte) {
	c.t.Helper()
	if err := c.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		c.t.Fatal(err)
	}
	typ, err := c.r.ReadByte()
	if err != nil {
		c.t.Fatalf("read packet: %v", err)
	}
	n, err := binary.ReadUvarint(c.r) // MQTT's variable byte integer is LEB128
	if err != nil {
		c.t.Fatalf("read packet length: %v", err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		c.t.Fatalf("read packet body: %v", err)
	}
	return typ, body
}

// reasonString finds the Reason String (0x1F) in a property block.
func reasonString(t *testing.T, b []byte) string {
	t.Helper()
	if len(b) == 0 {
		return ""
	}
	n, w := binary.Uvarint(b)
	if w <= 0 || int(n) > len(b)-w {
		t.Fatalf("properties %x: bad length", b)
	}
	props := b[w : w+int(n)]
	for len(props) > 0 {
		id := props[0]
		props = props[1:]
		switch id {
		case 0x1F: // Reason String
			l := int(binary.BigEndian.Uint16(props))
			return string(props[2 : 2+l])
		case 0x26: // User Property: two strings
			for range 2 {
				props = props[2+int(binary.BigEndian.Uint16(props)):]
			}
		default:
			t.Fatalf("unexpected PUBACK property %#x", id)
		}
	}
	return ""
}

func putString(b *bytes.Buffer, s string) {
	b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(s))))
	b.WriteString(s)
}

func varint(n int) []byte { return binary.AppendUvarint(nil, uint64(n)) }

// TestRefusalsReachMQTT5Publishers: each message the room log accepts on
// the wire and refuses gets a PUBACK with the reason code that fits and a
// Reason String naming the refusal, and is still counted and logged;
// accepted messages get a success PUBACK.
func TestRefusalsReachMQTT5Publishers(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = brokertest.Users(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw"}, "*")
	cfg.Limits.MaxPacketSize = 128 * 1024
	cfg.RoomLog.MaxPayload = 100 * 1024
	cfg.RoomLog.MaxConversationsPerUser = 2
	var lines brokertest.Lines
	cfg.LogLevel = "warn"
	b := brokertest.StartLogged(t, cfg, &lines)
	alice := dial5(t, b.Addr, "alice")
	tests := []struct {
		name    string
		topic   string
		payload []byte
		code    byte
		reason  string // in the Reason String
	}{
		{"a DM to a user", wire.DMTopic("bob", "alice"), []byte("hi bob"), 0, ""},
		{"a DM to nobody", wire.DMTopic("ghost", "alice"), []byte("hi?"), 0x90, roomlog.RefusedUnknownRecipient},
		{"a stamped record over the packet size", wire.RoomTopic("r1", "alice"), bytes.Repeat([]byte("<"), 60*1024), 0x95, roomlog.RefusedOversized},
		{"a payload over max_payload", wire.RoomTopic("r1", "alice"), bytes.Repeat([]byte("a"), 101*1024), 0x95, "invalid message"},
		{"a malformed envelope", wire.RoomTopic("r1", "alice"), []byte(`{"v":1,`), 0x99, "invalid message"},
		{"not UTF-8", wire.RoomTopic("r1", "alice"), []byte{0xff, 0xfe}, 0x99, "UTF-8"},
		{"the sender's second conversation", wire.RoomTopic("r1", "alice"), []byte("hello"), 0, ""},
		{"the sender's third conversation", wire.RoomTopic("r2", "alice"), []byte("hello"), 0x97, roomlog.RefusedUserConversations},
		{"a known conversation past the cap", wire.RoomTopic("r1", "alice"), []byte("again"), 0, ""},
	}
	for _, tt := range tests {
		code, reason := alice.publish(tt.topic, tt.payload)
		success := code < 0x80
		if tt.code == 0 && !success || tt.code != 0 && code != tt.code {
			t.Errorf("%s: PUBACK reason code %#x (%q), want %#x", tt.name, code, reason, tt.code)
		}
		if !strings.Contains(reason, tt.reason) {
			t.Errorf("%s: Reason String %q, want it to name %q", tt.name, reason, tt.reason)
		}
	}
	st := b.Server.Stats().RoomLog
	for r, want := range map[string]int64{roomlog.RefusedUnknownRecipient: 1, roomlog.RefusedOversized: 1, roomlog.RefusedUserConversations: 1} {
		if got := st.Refused[r]; got != want {
			t.Errorf("refused %s = %d, want %d", r, got, want)
		}
	}
	if st.Invalid != 3 || st.Appended != 3 {
		t.Errorf("invalid %d, appended %d; want 3, 3", st.Invalid, st.Appended)
	}
	lines.WaitN(t, wait, 3, func(l map[string]any) bool { return l["event"] == logevent.MessageRefused })
	for _, l := range lines.All() {
		if l["msg"] == "publish packet error" {
			t.Errorf("Mochi's line for a refused publish is forwarded: %v", l)
		}
	}
}

// TestRefusalsStayAcknowledgedForMQTT311: an MQTT 3.1.1 publisher has no
// negative PUBACK; its refused messages are acknowledged as a success (the
// publishes complete), discarded (a subscriber gets only the valid message
// sent after them) and counted.
func TestRefusalsStayAcknowledgedForMQTT311(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = brokertest.Users(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw"}, "*")
	b := brokertest.Start(t, cfg)
	bob := connect(t, b.Addr, "bob")
	got := make(chan string, 4)
	if tok := bob.Subscribe(wire.RoomFilter("r1"), 1, func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	alice := connect(t, b.Addr, "alice")
	for _, p := range []struct{ topic, payload string }{
		{wire.RoomTopic("r1", "alice"), `{"v":1,`},
		{wire.DMTopic("ghost", "alice"), "hi?"},
		{wire.RoomTopic("r1", "alice"), "marker"},
	} {
		if tok := alice.Publish(p.topic, 1, false, p.payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", p.topic, tok.Error())
		}
	}
	select {
	case m := <-got:
		if e, err := wire.DecodeEnvelope([]byte(m), 0); err != nil || e.Body != "marker" {
			t.Errorf("bob got %q first, want the marker (the refused messages are discarded)", m)
		}
	case <-time.After(wait):
		t.Fatal("bob got nothing")
	}
	st := b.Server.Stats().RoomLog
	if st.Refused[roomlog.RefusedUnknownRecipient] != 1 || st.Invalid != 1 || st.Appended != 1 {
		t.Errorf("refused %v, invalid %d, appended %d; want 1 unknown recipient, 1 invalid, 1 appended", st.Refused, st.Invalid, st.Appended)
	}
}
