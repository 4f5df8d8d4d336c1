package cluster_test

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// watchPresence subscribes m to user's presence and returns its updates.
func watchPresence(t *testing.T, m *member, user string) <-chan wire.Presence {
	t.Helper()
	ch := make(chan wire.Presence, 64)
	tok := m.c.Subscribe(wire.PresenceTopic(user), 1, func(_ paho.Client, msg paho.Message) {
		if p, err := wire.DecodePresence(msg.Payload()); err == nil {
			ch <- p
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe presence: %v", tok.Error())
	}
	return ch
}

// awaitPresence waits until an update with status and devices arrives.
func awaitPresence(t *testing.T, ch <-chan wire.Presence, status string, devices int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case p := <-ch:
			if p.Status == status && p.Devices == devices {
				return
			}
		case <-deadline:
			t.Fatalf("no presence %s with %d devices within %s", status, devices, within)
		}
	}
}

func announce(t *testing.T, m *member, device, status string) {
	t.Helper()
	payload := fmt.Sprintf(`{"v":1,"user":%q,"status":%q,"rooms":["lobby"],"at_ns":%d,"device":%q}`, m.user, status, time.Now().UnixNano(), device)
	if tok := m.c.Publish(wire.PresenceTopic(m.user), 1, true, payload); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish presence: %v", tok.Error())
	}
}

// TestPresenceAcrossBrokers: a user is online while any device on any
// broker is; when the broker of their last device dies, every other broker
// shows them offline within the presence TTL.
func TestPresenceAcrossBrokers(t *testing.T) {
	bs := brokertest.StartCluster(t, 3)
	updates := watchPresence(t, join(t, bs[1].URL, "watcher"), "alice")
	phone := join(t, bs[0].URL, "alice")
	announce(t, phone, "phone", wire.Online)
	awaitPresence(t, updates, wire.Online, 1, wait)
	laptop := join(t, bs[2].URL, "alice")
	announce(t, laptop, "laptop", wire.Online)
	awaitPresence(t, updates, wire.Online, 2, wait)
	announce(t, phone, "phone", wire.Offline)
	awaitPresence(t, updates, wire.Online, 1, wait)
	bs[2].Kill()
	awaitPresence(t, updates, wire.Offline, 0, 10*time.Second)
}
