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

// TestStuckSubscriberDoesNotHoldBackRetainedPublishes: a client whose
// socket is full sends a wildcard SUBSCRIBE, whose SUBACK then waits for
// the socket up to limits.write_timeout. Meanwhile retained publishes of
// other clients (every node's presence is one) are acknowledged at once:
// the retain guard is not held across that write.
func TestStuckSubscriberDoesNotHoldBackRetainedPublishes(t *testing.T) {
	const span, bound = time.Second, 500 * time.Millisecond
	cfg := brokertest.Config(t)
	cfg.RoomLog.Enabled = false
	cfg.Limits.WriteTimeout = time.Minute // the stuck client stays for the whole test
	b := brokertest.Start(t, cfg)
	stuck := dialRaw(t, b.Addr, "stuck", "test/bulk", 0) // never reads again

	pub := mustDial(t, b.URL, clientOpts{id: "pub"})
	big := make([]byte, 128<<10)
	for range 200 { // 25 MiB: the stuck client's socket fills, its writer blocks
		publish(t, pub, "test/bulk", big)
	}
	stuck.write(t, packet(0x82, append(append([]byte{0, 2}, mqttString("test/+")...), 0)))

	for n, start := 0, time.Now(); time.Since(start) < span; n++ {
		tok := pub.Publish("test/retained", 1, true, []byte{byte(n)})
		if !tok.WaitTimeout(bound) {
			t.Fatalf("retained publish %d not acknowledged within %s while a SUBACK waits to be written", n, bound)
		}
		if err := tok.Error(); err != nil {
			t.Fatalf("retained publish %d: %v", n, err)
		}
	}
}
