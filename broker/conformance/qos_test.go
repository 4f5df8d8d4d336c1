package conformance

import (
	"fmt"
	"testing"

	"github.com/distchat/distchat/broker/internal/rawmqtt"
)

// [MQTT-3.3.4-1] [MQTT-4.3.2-2] (3.1.1 and 5): a QoS 1 PUBLISH is answered
// with a PUBACK carrying its packet identifier (and, in MQTT 5, a success
// code: 0x00, or 0x10 "no matching subscribers").
func TestQoS1PublishIsAcknowledged(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			c := open(t, tg, v, "puback-"+vname(v), false)
			for _, id := range []uint16{1, 0x1234, 0xffff} {
				c.send(rawmqtt.Packet{Type: rawmqtt.PUBLISH, QoS: 1, ID: id, Topic: topic(t, "a"), Payload: []byte("x")})
				ack := c.next()
				if ack.Type != rawmqtt.PUBACK || ack.ID != id || ack.Reason >= 0x80 {
					fail("%s: publish %d answered with %s %d reason %#x", vname(v), id, rawmqtt.TypeName(ack.Type), ack.ID, ack.Reason)
				}
			}
		}
	})
}

// [MQTT-2.3.1-1] [MQTT-4.3.2-1] [MQTT-4.6.0-6] (3.1.1; the same numbers
// but [MQTT-2.2.1-3] in 5): QoS 1 deliveries carry non-zero packet
// identifiers unused by any other unacknowledged delivery, DUP 0, and
// arrive in the order they were published.
func TestQoS1DeliveryIdentifiersAndOrder(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			tp := topic(t, vname(v))
			sub := open(t, tg, v, "sub-"+vname(v), false)
			sub.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
			pub := open(t, tg, v, "pub-"+vname(v), false)
			const n = 10
			for i := range n {
				pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: fmt.Appendf(nil, "%d", i)})
			}
			seen := map[uint16]bool{}
			var got []rawmqtt.Packet
			for i := range n {
				p := sub.expectPublish()
				got = append(got, p)
				switch {
				case p.QoS != 1 || p.Dup:
					fail("%s: delivery %d at QoS %d DUP %v, want QoS 1 DUP 0", vname(v), i, p.QoS, p.Dup)
				case p.ID == 0 || seen[p.ID]:
					fail("%s: delivery %d has packet identifier %d, zero or in use", vname(v), i, p.ID)
				case string(p.Payload) != fmt.Sprint(i):
					fail("%s: delivery %d is %q: out of order", vname(v), i, p.Payload)
				}
				seen[p.ID] = true
			}
			for _, p := range got {
				sub.ack(p)
			}
		}
	})
}

// [MQTT-4.4.0-1] [MQTT-3.3.1-1] (3.1.1 and 5): a QoS 1 delivery that was
// not acknowledged is sent again when the persistent session resumes,
// with its packet identifier and DUP 1.
func TestUnacknowledgedQoS1ResentWithDup(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			id, tp := "dup-"+vname(v), topic(t, vname(v))
			c := open(t, tg, v, id, true)
			c.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
			pub := open(t, tg, v, "pub-"+id, false)
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: []byte("unacked")})
			first := c.expectPublish()
			if first.Dup {
				fail("%s: first delivery has DUP 1", vname(v))
			}
			_ = c.Close() // no PUBACK, no DISCONNECT: a lost connection

			c = dial(t, tg, v, id)
			c.connect(session(id, true), rawmqtt.Props{})
			again := c.expectPublish()
			c.ack(again)
			if !again.Dup || again.ID != first.ID || string(again.Payload) != "unacked" {
				fail("%s: resent as %q id %d DUP %v, want %q id %d DUP 1", vname(v), again.Payload, again.ID, again.Dup, "unacked", first.ID)
			}
		}
	})
}
