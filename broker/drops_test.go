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

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/chatnode/wire"
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
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := conn.Close(); err != nil && !strings.Contains(err.Error(), "closed") {
			t.Error(err)
		}
	})
	c := &rawClient{conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
	connect := append(mqttString("MQTT"), 4, 0x02, 0, 0) // v3.1.1, clean session, keep-alive off
	connect = append(connect, mqttString(id)...)
	c.write(t, packet(0x10, connect))
	if typ, body := c.read(t); typ != 0x20 || body[1] != 0 {
		t.Fatalf("CONNACK: type %#x body %v", typ, body)
	}
	sub := append([]byte{0, 1}, mqttString(filter)...)
	c.write(t, packet(0x82, append(sub, qos)))
	if typ, body := c.read(t); typ != 0x90 || body[2] != qos {
		t.Fatalf("SUBACK: type %#x body %v", typ, body)
	}
	return c
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
	subscribe(t, pub, "chat/fence", fence)
	topic := wire.RoomTopic("lobby", "pub")
	for i := range sent {
		publish(t, pub, topic, envelope(t, "lobby", "pub", fmt.Sprint("m", i)))
	}
	// The broker fans out one publisher's messages in order, after each
	// PUBACK: once the fence arrives, every lobby message has been routed.
	publish(t, pub, "chat/fence", []byte("fence"))
	expect(t, fence, msg{"chat/fence", "fence"})

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
// OnPublishDropped. (At QoS 1 it would instead block the publisher, F4 in the
// field notes; at QoS 0 the drop is what happens.)
func TestStalledReaderQueueFullDropsCounted(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Limits.MaxClientWritesPending = 1
	cfg.RoomLog.Enabled = false
	b, lines := loggedBroker(t, cfg)
	dialRaw(t, b.Addr, "stalled", "chat/bulk", 0) // never reads again

	fence := make(chan msg, 1)
	pub := mustDial(t, b.URL, clientOpts{id: "pub"})
	subscribe(t, pub, "chat/fence", fence)
	big := make([]byte, 128<<10)
	for range 200 { // 25 MiB: more than the socket buffers hold
		publish(t, pub, "chat/bulk", big)
	}
	publish(t, pub, "chat/fence", []byte("fence"))
	expect(t, fence, msg{"chat/fence", "fence"})

	st := b.Stats(t)
	n := st.Drops["queue_full"]
	if n == 0 {
		t.Fatalf("no queue_full drops counted: %v", st.Drops)
	}
	drops := lines.WaitN(t, wait, int(n), func(m map[string]any) bool {
		return m["event"] == "message_dropped" && m["cause"] == "queue_full"
	})
	if int64(len(drops)) != n || drops[0]["client_id"] != "stalled" || drops[0]["topic"] != "chat/bulk" {
		t.Errorf("%d drops counted, %d logged, first %v", n, len(drops), drops[0])
	}
}
