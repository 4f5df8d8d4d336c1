package conformance

import (
	"testing"

	"github.com/distchat/distchat/broker/internal/rawmqtt"
)

// willSession connects a client with a Will on a topic of the test's, and
// a watcher subscribed to that topic.
func willSession(t *testing.T, tg *target, v byte) (c, watcher *client, id string) {
	t.Helper()
	tp, id := topic(t, vname(v)), "will-"+vname(v)
	watcher = open(t, tg, v, "watch-"+vname(v), false)
	watcher.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
	c = dial(t, tg, v, id)
	cn := session(id, false)
	cn.Will = &rawmqtt.Will{Topic: tp, Payload: []byte("gone"), QoS: 1}
	c.connect(cn, rawmqtt.Props{})
	return c, watcher, id
}

// [MQTT-3.1.2-8] (3.1.1 and 5): a connection that ends without a
// DISCONNECT has its Will published.
func TestWillOnLostConnection(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			c, watcher, _ := willSession(t, tg, v)
			_ = c.Close()
			p := watcher.expectPublish()
			watcher.ack(p)
			if string(p.Payload) != "gone" {
				fail("%s: got %q, want the Will %q", vname(v), p.Payload, "gone")
			}
		}
	})
}

// [MQTT-3.1.2-10] (3.1.1 [MQTT-3.14.4-3]; 5): after a DISCONNECT (reason 0
// in MQTT 5) the Will is discarded, not published.
func TestNoWillAfterDisconnect(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			c, watcher, id := willSession(t, tg, v)
			c.disconnect()
			// Wait until the broker has handled the DISCONNECT: a session
			// with the same id takes over only after it.
			open(t, tg, v, id, false).disconnect()
			open(t, tg, v, "pub-"+vname(v), false).publish(rawmqtt.Packet{Topic: topic(t, vname(v)), QoS: 1, Payload: []byte("marker")})
			if got := watcher.until("marker"); len(got) > 0 {
				fail("%s: the Will %q was published after a DISCONNECT", vname(v), got[0].Payload)
			}
		}
	})
}
