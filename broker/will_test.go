package broker_test

import (
	"errors"
	"testing"

	pahopackets "github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// A Last Will is published by the broker without the checks a publish gets,
// so a CONNECT whose Will the client could not publish itself is refused:
// another user's presence, a room or DM message (which would skip the room
// log), a catch-up request, a topic outside chat/ the ACL does not grant.
func TestWillRefusedUnlessTheClientMayPublishIt(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = demoUsers(t)
	b := brokertest.Start(t, cfg)
	for _, tc := range []struct {
		name, topic string
		want        error // nil: accepted
	}{
		{"own presence", wire.PresenceTopic("alice"), nil},
		{"another user's presence", wire.PresenceTopic("bob"), pahopackets.ErrorRefusedNotAuthorised},
		{"a room message as oneself", wire.RoomTopic("lobby", "alice"), pahopackets.ErrorRefusedNotAuthorised},
		{"a room message as another", wire.RoomTopic("lobby", "bob"), pahopackets.ErrorRefusedNotAuthorised},
		{"a DM", wire.DMTopic("bob", "alice"), pahopackets.ErrorRefusedNotAuthorised},
		{"a catch-up request", wire.SyncTopic("alice"), pahopackets.ErrorRefusedNotAuthorised},
		{"an inbox", wire.InboxTopic("bob"), pahopackets.ErrorRefusedNotAuthorised},
		{"outside chat/", "app/alerts", pahopackets.ErrorRefusedNotAuthorised},
		{"malformed chat topic", "chat/presence/al ice", pahopackets.ErrorRefusedNotAuthorised},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(t, b.URL, clientOpts{id: "alice-will", user: "alice", pass: "alice-pw", willTopic: tc.topic})
			if err == nil {
				c.Disconnect(0)
			}
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Errorf("connect with a Will on %s: %v, want %v", tc.topic, err, tc.want)
			}
		})
	}
}

// In open mode (no users) identities are not enforced, but a Will still
// cannot carry a chat message past the room log.
func TestWillInOpenMode(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	if _, err := dial(t, b.URL, clientOpts{id: "w1", user: "w1", willTopic: wire.PresenceTopic("w1")}); err != nil {
		t.Errorf("presence Will in open mode: %v", err)
	}
	if _, err := dial(t, b.URL, clientOpts{id: "w2", user: "w2", willTopic: wire.RoomTopic("lobby", "w2")}); !errors.Is(err, pahopackets.ErrorRefusedNotAuthorised) {
		t.Errorf("room Will in open mode: %v, want refused", err)
	}
}
