package broker_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// A subscriber that does not acknowledge holds memory in the broker for each
// delivery; limits.max_inflight_bytes bounds it by bytes, not only by count.
// With a bound of one byte the first delivery goes out (a client holding
// nothing is always served), every further one is dropped and counted until
// the client acknowledges, and /stats shows the bytes held.
func TestInflightBytesBoundDropsCountedAndReleasedOnAck(t *testing.T) {
	const sent = 10
	cfg := brokertest.Config(t)
	cfg.Limits.MaxInflightBytes = 1
	b, lines := loggedBroker(t, cfg)
	stuck := dialRaw(t, b.Addr, "stuck", wire.RoomFilter("lobby"), 1)

	fence := make(chan msg, 1)
	pub := mustDial(t, b.URL, clientOpts{id: "pub"})
	subscribe(t, pub, "test/fence", fence)
	topic := wire.RoomTopic("lobby", "pub")
	publishFenced := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			publish(t, pub, topic, envelope(t, "lobby", "pub", id))
		}
		publish(t, pub, "test/fence", []byte("fence"))
		expect(t, fence, msg{"test/fence", "fence"})
	}
	var ids []string
	for i := range sent {
		ids = append(ids, fmt.Sprint("m", i))
	}
	publishFenced(ids...)

	typ, body := stuck.read(t)
	if typ != 0x30 {
		t.Fatalf("stuck client got packet type %#x, want PUBLISH", typ)
	}
	drops := lines.WaitN(t, wait, sent-1, event("message_dropped"))
	for _, d := range drops {
		if d["client_id"] != "stuck" || d["cause"] != "inflight_bytes" {
			t.Errorf("drop logged as %v", d)
		}
	}
	st := b.Stats(t)
	if st.Drops["inflight_bytes"] != sent-1 {
		t.Errorf("/stats drops = %v, want inflight_bytes %d", st.Drops, sent-1)
	}
	if st.InflightBytes <= 0 {
		t.Errorf("/stats inflight_bytes = %d while a delivery is unacknowledged", st.InflightBytes)
	}

	// PUBACK the delivery: its bytes are released and the next is sent.
	topicLen := int(binary.BigEndian.Uint16(body))
	packetID := body[2+topicLen : 4+topicLen]
	stuck.write(t, packet(0x40, packetID))
	waitInflightBytes(t, b, 0)
	publishFenced("after-ack")
	if typ, _ := stuck.read(t); typ != 0x30 {
		t.Fatalf("after PUBACK the stuck client got packet type %#x, want PUBLISH", typ)
	}
	if got := b.Stats(t).Drops["inflight_bytes"]; got != sent-1 {
		t.Errorf("after PUBACK: inflight_bytes drops = %d, want still %d", got, sent-1)
	}
}

// waitInflightBytes polls /stats until inflight_bytes is want: a PUBACK is
// processed on the broker's own goroutine, with no event to wait on.
func waitInflightBytes(t *testing.T, b *brokertest.Broker, want int64) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		got := b.Stats(t).InflightBytes
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/stats inflight_bytes = %d after %s, want %d", got, wait, want)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation: the deadline bounds it
	}
}
