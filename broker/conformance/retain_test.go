package conformance

import (
	"reflect"
	"testing"

	"github.com/distchat/distchat/broker/internal/rawmqtt"
)

// [MQTT-3.3.1-5] [MQTT-3.3.1-6] [MQTT-3.3.1-8] (3.1.1), [MQTT-3.3.1-5]
// [MQTT-3.3.1-9] (5): a retained message goes to a new subscriber with
// RETAIN 1.
func TestRetainedGoesToNewSubscriber(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			tp := topic(t, vname(v))
			pub := open(t, tg, v, "pub-"+vname(v), false)
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Retain: true, Payload: []byte("kept")})
			sub := open(t, tg, v, "sub-"+vname(v), false)
			sub.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
			p := sub.expectPublish()
			sub.ack(p)
			if !p.Retain || string(p.Payload) != "kept" {
				fail("%s: got %q RETAIN %v, want %q RETAIN 1", vname(v), p.Payload, p.Retain, "kept")
			}
		}
	})
}

// [MQTT-3.3.1-9] (3.1.1), [MQTT-3.3.1-12] (5, Retain As Published 0): a
// retained publish forwarded to an existing subscription has RETAIN 0.
func TestRetainFlagClearedForLiveDelivery(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			tp := topic(t, vname(v))
			sub := open(t, tg, v, "sub-"+vname(v), false)
			sub.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
			pub := open(t, tg, v, "pub-"+vname(v), false)
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Retain: true, Payload: []byte("live")})
			p := sub.expectPublish()
			sub.ack(p)
			if p.Retain {
				fail("%s: live delivery of a retained publish has RETAIN 1", vname(v))
			}
		}
	})
}

// [MQTT-3.3.1-10] [MQTT-3.3.1-11] (3.1.1), [MQTT-3.3.1-6] [MQTT-3.3.1-7]
// (5): a retained publish with an empty payload removes the retained
// message, and is not itself retained.
func TestEmptyRetainedPublishClears(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, v := range versions {
			tp := topic(t, vname(v))
			pub := open(t, tg, v, "pub-"+vname(v), false)
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Retain: true, Payload: []byte("old")})
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Retain: true})
			sub := open(t, tg, v, "sub-"+vname(v), false)
			sub.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: []byte("marker")})
			if got := sub.until("marker"); len(got) > 0 {
				fail("%s: a new subscriber got %q (RETAIN %v) after the retained message was cleared", vname(v), got[0].Payload, got[0].Retain)
			}
		}
	})
}

// allProps are properties of an Application Message that a broker must
// forward unaltered: [MQTT-3.3.2-4] Payload Format Indicator,
// [MQTT-3.3.2-15] Response Topic, [MQTT-3.3.2-16] Correlation Data,
// [MQTT-3.3.2-17] [MQTT-3.3.2-18] user properties in order,
// [MQTT-3.3.2-20] Content Type.
func allProps() rawmqtt.Props {
	var p rawmqtt.Props
	p.SetInt(rawmqtt.PropPayloadFormat, 1)
	p.SetStr(rawmqtt.PropContentType, "text/plain; charset=utf-8")
	p.SetStr(rawmqtt.PropResponseTopic, "conf/replies/1")
	p.SetBin(rawmqtt.PropCorrelationData, []byte{0, 1, 0xfe, 0xff})
	for _, kv := range [][2]string{{"b", "2"}, {"a", "1"}, {"b", "1"}, {"émoji", "✓"}, {"empty", ""}} {
		p.User = append(p.User, rawmqtt.UserProperty{Key: kv[0], Value: kv[1]})
	}
	return p
}

// forwarded checks that got carries every property of sent unaltered;
// the broker may add others (Message Expiry, Subscription Identifier,
// Topic Alias) that allProps does not set.
func forwarded(what string, sent, got rawmqtt.Props) {
	for id, v := range sent.Ints {
		if g, ok := got.Ints[id]; !ok || g != v {
			fail("%s: property %#x is %d (present %v), sent %d", what, id, g, ok, v)
		}
	}
	for id, v := range sent.Strs {
		if got.Strs[id] != v {
			fail("%s: property %#x is %q, sent %q", what, id, got.Strs[id], v)
		}
	}
	for id, v := range sent.Bins {
		if string(got.Bins[id]) != string(v) {
			fail("%s: property %#x is %x, sent %x", what, id, got.Bins[id], v)
		}
	}
	if !reflect.DeepEqual(got.User, sent.User) {
		fail("%s: user properties %q, sent %q", what, got.User, sent.User)
	}
}

// [MQTT-3.3.1-5] with [MQTT-3.3.2-4] [MQTT-3.3.2-15..18] [MQTT-3.3.2-20]
// (5): a retained message is the whole Application Message, so a later
// subscriber gets it with its properties.
func TestRetainedKeepsProperties(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		tp := topic(t, "retained")
		pub := open(t, tg, rawmqtt.V5, "pub", false)
		pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Retain: true, Payload: []byte("with props"), Props: allProps()})
		sub := open(t, tg, rawmqtt.V5, "sub", false)
		sub.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
		p := sub.expectPublish()
		sub.ack(p)
		forwarded("retained delivery", allProps(), p.Props)
	})
}

// [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11] (5): Retain Handling 0
// sends retained messages at every subscribe, 1 only when the
// subscription is new, 2 never.
func TestRetainHandling(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		tp := topic(t, "retained")
		pub := open(t, tg, rawmqtt.V5, "pub", false)
		pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Retain: true, Payload: []byte("kept")})
		cases := []struct {
			handling     byte
			first, again int // retained messages at the first and a repeated SUBSCRIBE
		}{{0, 1, 1}, {1, 1, 0}, {2, 0, 0}}
		for _, c := range cases {
			sub := open(t, tg, rawmqtt.V5, "sub-rh"+string('0'+c.handling), false)
			for i, want := range []int{c.first, c.again} {
				sub.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1, RetainHandling: c.handling})
				// The marker goes to a second filter: the subscription
				// under test may not be the only one matching it.
				sub.subscribe(rawmqtt.Subscription{Filter: tp + "/marker", QoS: 1})
				pub.publish(rawmqtt.Packet{Topic: tp + "/marker", QoS: 1, Payload: []byte("marker")})
				if got := sub.until("marker"); len(got) != want {
					fail("Retain Handling %d, subscribe %d: %d retained messages, want %d", c.handling, i+1, len(got), want)
				}
			}
		}
	})
}

// [MQTT-3.3.1-12] [MQTT-3.3.1-13] (5): with Retain As Published 1 a live
// delivery keeps the publish's RETAIN flag; with 0 it is cleared.
func TestRetainAsPublished(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		tp := topic(t, "rap")
		rap := open(t, tg, rawmqtt.V5, "sub-rap", false)
		rap.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1, RetainAsPublished: true, RetainHandling: 2})
		plain := open(t, tg, rawmqtt.V5, "sub-plain", false)
		plain.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1, RetainHandling: 2})
		pub := open(t, tg, rawmqtt.V5, "pub", false)
		for _, retain := range []bool{true, false} {
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Retain: retain, Payload: []byte("x")})
			if p := rap.expectPublish(); p.Retain != retain {
				fail("Retain As Published 1: RETAIN %v for a publish with RETAIN %v", p.Retain, retain)
			} else {
				rap.ack(p)
			}
			if p := plain.expectPublish(); p.Retain {
				fail("Retain As Published 0: RETAIN 1 on a live delivery")
			} else {
				plain.ack(p)
			}
		}
	})
}
