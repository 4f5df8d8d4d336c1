package roomlog_test

import (
	"bytes"
	"io"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// rawClient speaks MQTT 3.1.1 by hand, so a test can send what paho only
// sends on its own: a PUBLISH with DUP set and a chosen packet id.
type rawClient struct {
	t    *testing.T
	conn net.Conn
}

func dialRaw(t *testing.T, addr, clientID string) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn}
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), ClientIdentifier: clientID, Keepalive: 30, Clean: true,
			UsernameFlag: true, Username: []byte(clientID), PasswordFlag: true, Password: []byte(clientID + "-pw")}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	c.write(buf.Bytes())
	if ack := c.read(4); ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK % x", ack)
	}
	return c
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if err := c.conn.SetDeadline(time.Now().Add(wait)); err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) read(n int) []byte {
	c.t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c.conn, b); err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return b
}

// publish sends a QoS 1 PUBLISH and waits for its PUBACK.
func (c *rawClient) publish(topic string, id uint16, dup bool, payload string) {
	c.t.Helper()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1, Dup: dup},
		TopicName: topic, PacketID: id, Payload: []byte(payload)}
	var buf bytes.Buffer
	if err := pk.PublishEncode(&buf); err != nil {
		c.t.Fatal(err)
	}
	c.write(buf.Bytes())
	for {
		ack := c.read(4)
		if ack[0] != 0x40 || ack[1] != 2 {
			c.t.Fatalf("got % x, want a PUBACK for packet %d", ack, id)
		}
		if int(ack[2])<<8|int(ack[3]) == int(id) {
			return
		}
		// a PUBACK of an earlier packet, repeated by a session takeover
	}
}

// TestPlainTextResendIsStoredOnce: a plain-text publish from a client that
// is not a distchat node (the broker makes its id), resent with DUP and the
// same packet id on a new connection, as after a lost PUBACK, is stored
// once. A DUP publish whose first copy was never seen, or whose text
// differs, is a new message. A client that reuses a packet id for a new
// message within the minute (mosquitto_pub-like clients use id 1 for
// everything) is not matched from then on: a resend of a reused id could
// be a new message lost on its way in, so it is stored again (shown twice,
// never lost). TestPlainIDs has the rules one by one.
func TestPlainTextResendIsStoredOnce(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	topic := wire.RoomTopic("lobby", "alice")
	c := dialRaw(t, b.Addr, "alice")
	c.publish(topic, 7, false, "hello") // 1
	c.conn.Close()                      // the PUBACK "was lost": the client reconnects and resends
	c = dialRaw(t, b.Addr, "alice")
	c.publish(topic, 7, true, "hello")  // the resend: stored once
	c.publish(topic, 9, true, "hello")  // 2: DUP, but no first copy seen
	c.publish(topic, 7, true, "bye")    // 3: DUP with another text
	c.publish(topic, 7, false, "hello") // 4: packet id 7 reused for a new message
	c.publish(topic, 7, true, "hello")  // 5: from a client that reuses ids: stored again
	if got := syncAll(t, connect(t, b.Addr, "bob"), "bob", "lobby"); !slices.Equal(got, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("room log holds %v, want [1 2 3 4 5]: the first resend stored once", got)
	}
	if st := b.Server.Stats().RoomLog; st == nil || st.Resent != 1 {
		t.Errorf("room log stats %+v, want resent 1", st)
	}
}
