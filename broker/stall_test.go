package broker_test

import (
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
)

// TestStuckSubscriberDoesNotBlockPublishers shows a Mochi trap: a QoS 1
// subscriber that stops reading (keep-alive off, like a partitioned host
// whose TCP connection is still up) must not stall publishers to its topic.
// Its connection is closed after limits.write_timeout instead.
func TestStuckSubscriberDoesNotBlockPublishers(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.RoomLog.Enabled = false
	cfg.Limits.WriteTimeout = 300 * time.Millisecond
	b, lines := loggedBroker(t, cfg)
	dialRaw(t, b.Addr, "stuck", "test/bulk", 1) // never reads again

	fence := make(chan msg, 1)
	pub := mustDial(t, b.URL, clientOpts{id: "pub"})
	subscribe(t, pub, "test/fence", fence)
	big := make([]byte, 128<<10)
	for range 200 { // 25 MiB: far more than the socket buffers hold
		publish(t, pub, "test/bulk", big) // each waits for its PUBACK
	}
	publish(t, pub, "test/fence", []byte("fence"))
	expect(t, fence, msg{"test/fence", "fence"})
	if n := b.Stats(t).SlowSubscribersDisconnected; n != 1 {
		t.Errorf("slow_subscribers_disconnected = %d, want 1", n)
	}
	lines.Wait(t, wait, func(m map[string]any) bool { return m["event"] == "slow_subscriber_disconnected" })
}
