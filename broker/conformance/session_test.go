package conformance

import (
	"fmt"
	"testing"

	"github.com/distchat/distchat/broker/internal/rawmqtt"
)

// [MQTT-3.1.2-6] [MQTT-3.2.2-1] (3.1.1), [MQTT-3.1.2-4] [MQTT-3.2.2-2] (5):
// a clean connection discards the session it replaces (its subscriptions
// too) and is told there is no session.
func TestCleanStartDiscardsSession(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			id, tp := "clean-"+vname(v), topic(t, vname(v))
			c := open(t, tg, v, id, true)
			c.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
			c.disconnect()

			c = dial(t, tg, v, id)
			if ack := c.connect(session(id, false), rawmqtt.Props{}); ack.SessionPresent {
				fail("%s: CONNACK Session Present 1 for a clean connection", vname(v))
			}
			// The old subscription is gone: only the marker, published
			// to a filter subscribed now, arrives.
			c.subscribe(rawmqtt.Subscription{Filter: tp + "/marker", QoS: 1})
			pub := open(t, tg, v, "pub-"+id, false)
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: []byte("to the old session")})
			pub.publish(rawmqtt.Packet{Topic: tp + "/marker", QoS: 1, Payload: []byte("marker")})
			if got := c.until("marker"); len(got) > 0 {
				fail("%s: the discarded session's subscription still delivered %q", vname(v), got[0].Payload)
			}
		}
	})
}

// [MQTT-3.1.2-4] [MQTT-3.1.2-5] [MQTT-3.2.2-2] (3.1.1), [MQTT-3.2.2-3] (5):
// a persistent session is resumed with Session Present 1, keeps its
// subscriptions, and receives the QoS 1 messages published while it was
// away, in order, without subscribing again.
func TestPersistentSessionResumes(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			id, tp := "persist-"+vname(v), topic(t, vname(v))
			c := open(t, tg, v, id, true)
			c.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
			c.disconnect()

			pub := open(t, tg, v, "pub-"+id, false)
			for i := range 3 {
				pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: fmt.Appendf(nil, "away %d", i)})
			}
			c = dial(t, tg, v, id)
			if ack := c.connect(session(id, true), rawmqtt.Props{}); !ack.SessionPresent {
				fail("%s: CONNACK Session Present 0 for a persistent session", vname(v))
			}
			for i := range 3 {
				p := c.expectPublish()
				c.ack(p)
				if want := fmt.Sprintf("away %d", i); string(p.Payload) != want || p.QoS != 1 {
					fail("%s: message %d: %q at QoS %d, want %q at QoS 1", vname(v), i, p.Payload, p.QoS, want)
				}
			}
			c.disconnect()
		}
	})
}
