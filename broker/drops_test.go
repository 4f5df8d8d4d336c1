package broker_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/broker"
	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// rawClient is a hand-written MQTT 3.1.1 subscriber that never acknowledges
// anything: the misbehaving (or stuck) client Mochi drops messages for.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func mqttString(s string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(s)))
	return append(b, s...)
}

func packet(typ byte, body []byte) []byte {
	out := []byte{typ}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			break
		}
	}
	return append(out, body...)
}

// dialRaw connects with a clean session and no keep-alive, and subscribes
// to filter at qos.
func dialRaw(t *testing.T, addr, id, filter string, qos byte) *rawClient {
	t.Helper()
	c := dialRawSession(t, addr, id, true)
	c.subscribe(t, filter, qos)
	return c
}

// dialRawSession connects with no keep-alive and a clean or persistent
// session; the connection is closed when the test ends (or by close).
func dialRawSession(t *testing.T, addr, id string, clean bool) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	c := &rawClient{conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
	t.Cleanup(func() { c.close(t) })
	var flags byte
	if clean {
		flags = 0x02
	}
	connect := append(mqttString("MQTT"), 4, flags, 0, 0) // v3.1.1, keep-alive off
	connect = append(connect, mqttString(id)...)
	c.write(t, packet(0x10, connect))
	if typ, body := c.read(t); typ != 0x20 || body[1] != 0 {
		t.Fatalf("CONNACK: type %#x body %v", typ, body)
	}
	return c
}

func (c *rawClient) subscribe(t *testing.T, filter string, qos byte) {
	t.Helper()
	sub := append([]byte{0, 1}, mqttString(filter)...)
	c.write(t, packet(0x82, append(sub, qos)))
	if typ, body := c.read(t); typ != 0x90 || body[2] != qos {
		t.Fatalf("SUBACK: type %#x body %v", typ, body)
	}
}

// close drops the TCP connection without a DISCONNECT, as a crashed client
// would; closing twice is fine.
func (c *rawClient) close(t *testing.T) {
	if err := c.conn.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Error(err)
	}
}

func (c *rawClient) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := c.conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

// read returns the next packet's type nibble (shifted) and body.
func (c *rawClient) read(t *testing.T) (byte, []byte) {
	t.Helper()
	if err := c.conn.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	h, err := c.r.ReadByte()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	n, mul := 0, 1
	for {
		d, err := c.r.ReadByte()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		n += int(d&0x7f) * mul
		mul *= 128
		if d&0x80 == 0 {
			break
		}
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.r, body); err != nil {
		t.Fatalf("read: %v", err)
	}
	return h & 0xf0, body
}

// A subscriber that never sends PUBACK fills its in-flight quota; Mochi then
// drops further QoS 1 messages for it without calling any hook. Each drop
// must be counted in /stats and logged with client, topic and cause.
func TestNeverAckingSubscriberDropsCountedAndLogged(t *testing.T) {
	const maxInflight, sent = 5, 20
	cfg := brokertest.Config(t)
	cfg.Limits.MaxInflight = maxInflight
	b, lines := loggedBroker(t, cfg)
	stuck := dialRaw(t, b.Addr, "stuck", wire.RoomFilter("lobby"), 1)

	fence := make(chan msg, 1)
	pub := mustDial(t, b.URL, clientOpts{id: "pub"})
	subscribe(t, pub, "test/fence", fence)
	topic := wire.RoomTopic("lobby", "pub")
	for i := range sent {
		publish(t, pub, topic, envelope(t, "lobby", "pub", fmt.Sprint("m", i)))
	}
	// The broker fans out one publisher's messages in order, after each
	// PUBACK: once the fence arrives, every lobby message has been routed.
	publish(t, pub, "test/fence", []byte("fence"))
	expect(t, fence, msg{"test/fence", "fence"})

	for range maxInflight {
		if typ, _ := stuck.read(t); typ != 0x30 {
			t.Fatalf("stuck client got packet type %#x, want PUBLISH", typ)
		}
	}
	drops := lines.WaitN(t, wait, sent-maxInflight, event("message_dropped"))
	for _, d := range drops {
		if d["client_id"] != "stuck" || d["topic"] != topic || d["cause"] != "inflight_quota" {
			t.Errorf("drop logged as %v", d)
		}
	}
	if len(drops) != sent-maxInflight {
		t.Errorf("%d drops logged, want %d", len(drops), sent-maxInflight)
	}
	st := b.Stats(t)
	if st.Drops["inflight_quota"] != sent-maxInflight || st.Drops["queue_full"] != 0 {
		t.Errorf("/stats drops = %v, want inflight_quota %d", st.Drops, sent-maxInflight)
	}
}

// A subscriber that stops reading fills its socket and then its outbound
// queue (max_client_writes_pending); Mochi drops what does not fit and calls
// OnPublishDropped. (At QoS 1 it would instead block the publisher, see
// docs/mochi-and-paho.md; at QoS 0 the drop is what happens.)
func TestStalledReaderQueueFullDropsCounted(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Limits.MaxClientWritesPending = 1
	cfg.RoomLog.Enabled = false
	b, lines := loggedBroker(t, cfg)
	dialRaw(t, b.Addr, "stalled", "test/bulk", 0) // never reads again

	fence := make(chan msg, 1)
	pub := mustDial(t, b.URL, clientOpts{id: "pub"})
	subscribe(t, pub, "test/fence", fence)
	big := make([]byte, 128<<10)
	for range 200 { // 25 MiB: more than the socket buffers hold
		publish(t, pub, "test/bulk", big)
	}
	publish(t, pub, "test/fence", []byte("fence"))
	expect(t, fence, msg{"test/fence", "fence"})

	st := b.Stats(t)
	n := st.Drops["queue_full"]
	if n == 0 {
		t.Fatalf("no queue_full drops counted: %v", st.Drops)
	}
	drops := lines.WaitN(t, wait, int(n), func(m map[string]any) bool {
		return m["event"] == "message_dropped" && m["cause"] == "queue_full"
	})
	if int64(len(drops)) != n || drops[0]["client_id"] != "stalled" || drops[0]["topic"] != "test/bulk" {
		t.Errorf("%d drops counted, %d logged, first %v", n, len(drops), drops[0])
	}
}

// Mochi removes in-flight QoS 1 messages, calling OnQosDropped, when they
// outlive limits.message_expiry (a persistent subscriber that stays away) and
// when a clean session ends with messages unacknowledged. Both are drops,
// counted and logged by cause; a persistent session resumed by its owner
// inherits its messages, which is no drop.
func TestQosDroppedCountedByCause(t *testing.T) {
	for _, tc := range []struct {
		name   string
		clean  bool
		expiry time.Duration
		resume bool   // reconnect with the same id and get the message again
		cause  string // "" for no drop
	}{
		{name: "offline persistent subscriber, message expires", expiry: time.Second, cause: "expired"},
		{name: "clean session ends unacknowledged", clean: true, cause: "session_ended"},
		{name: "persistent session resumed", resume: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := brokertest.Config(t)
			cfg.RoomLog.Enabled = false
			if tc.expiry > 0 {
				cfg.Limits.MessageExpiry = tc.expiry
			}
			b, lines := loggedBroker(t, cfg)
			topic := wire.RoomTopic("lobby", "pub")
			sub := dialRawSession(t, b.Addr, "sub", tc.clean)
			sub.subscribe(t, wire.RoomFilter("lobby"), 1)
			pub := mustDial(t, b.URL, clientOpts{id: "pub"})
			publish(t, pub, topic, envelope(t, "lobby", "pub", "m1"))
			if typ, _ := sub.read(t); typ != 0x30 { // delivered, never acknowledged
				t.Fatalf("got packet type %#x, want PUBLISH", typ)
			}
			sub.close(t)
			lines.Wait(t, wait, func(m map[string]any) bool {
				return m["event"] == "client_disconnected" && m["client_id"] == "sub"
			})
			if tc.resume {
				again := dialRawSession(t, b.Addr, "sub", false)
				if typ, _ := again.read(t); typ != 0x30 {
					t.Fatalf("resumed session got packet type %#x, want the PUBLISH again", typ)
				}
			}
			if tc.cause != "" {
				lines.Wait(t, wait, func(m map[string]any) bool {
					return m["event"] == "message_dropped" && m["cause"] == tc.cause && m["client_id"] == "sub" && m["topic"] == topic
				})
			}
			st := b.Stats(t)
			for _, cause := range broker.DropCauses {
				want := int64(0)
				if cause == tc.cause {
					want = 1
				}
				if st.Drops[cause] != want {
					t.Errorf("/stats drops[%s] = %d, want %d (all: %v)", cause, st.Drops[cause], want, st.Drops)
				}
			}
		})
	}
}
