package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/internal/rawmqtt"
)

// [MQTT-3.3.2-4] [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17]
// [MQTT-3.3.2-18] [MQTT-3.3.2-20] (5): Payload Format Indicator, Response
// Topic, Correlation Data, Content Type and user properties (repeated
// names, their order) reach the subscriber unaltered.
func TestPropertiesEndToEnd(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		tp := topic(t, "props")
		sub, pub := pair(t, tg, rawmqtt.V5, tp)
		for _, qos := range []byte{0, 1} {
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: qos, Payload: []byte("p"), Props: allProps()})
			p := sub.expectPublish()
			sub.ack(p)
			forwarded(fmt.Sprintf("QoS %d delivery", qos), allProps(), p.Props)
		}
	})
}

// [MQTT-3.3.2-15] [MQTT-3.3.2-16] (5): a request/response exchange, twenty
// times over: the responder gets the Response Topic and Correlation Data
// of each request, and the requester the answer to each, matched by its
// Correlation Data.
func TestRequestResponse(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		reqTopic, respTopic := topic(t, "requests"), topic(t, "responses/requester")
		requester := open(t, tg, rawmqtt.V5, "requester", false)
		requester.subscribe(rawmqtt.Subscription{Filter: respTopic, QoS: 1})
		responder := open(t, tg, rawmqtt.V5, "responder", false)
		responder.subscribe(rawmqtt.Subscription{Filter: reqTopic, QoS: 1})
		for i := range 20 {
			var props rawmqtt.Props
			props.SetStr(rawmqtt.PropResponseTopic, respTopic)
			props.SetBin(rawmqtt.PropCorrelationData, fmt.Appendf(nil, "req-%d", i))
			requester.publish(rawmqtt.Packet{Topic: reqTopic, QoS: 1, Payload: []byte("ping"), Props: props})

			req := responder.expectPublish()
			responder.ack(req)
			rt, corr := req.Props.Strs[rawmqtt.PropResponseTopic], req.Props.Bins[rawmqtt.PropCorrelationData]
			if rt != respTopic || string(corr) != fmt.Sprintf("req-%d", i) {
				fail("request %d: Response Topic %q, Correlation Data %q", i, rt, corr)
			}
			var answer rawmqtt.Props
			answer.SetBin(rawmqtt.PropCorrelationData, corr)
			responder.publish(rawmqtt.Packet{Topic: rt, QoS: 1, Payload: []byte("pong"), Props: answer})

			resp := requester.expectPublish()
			requester.ack(resp)
			if got := resp.Props.Bins[rawmqtt.PropCorrelationData]; string(got) != fmt.Sprintf("req-%d", i) || string(resp.Payload) != "pong" {
				fail("response %d: %q with Correlation Data %q", i, resp.Payload, got)
			}
		}
	})
}

// [MQTT-3.8.3-3] (5): with No Local a client does not get its own
// messages; another client's subscription to the same topic does.
func TestNoLocal(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		tp := topic(t, "nolocal")
		self := open(t, tg, rawmqtt.V5, "self", false)
		self.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1, NoLocal: true})
		other := open(t, tg, rawmqtt.V5, "other", false)
		other.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1, NoLocal: true})
		for i := range 10 {
			self.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: fmt.Appendf(nil, "own %d", i)})
			if p := other.expectPublish(); string(p.Payload) != fmt.Sprintf("own %d", i) {
				fail("the other client got %q, want %q", p.Payload, fmt.Sprintf("own %d", i))
			} else {
				other.ack(p)
			}
			other.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: fmt.Appendf(nil, "marker %d", i)})
			if got := self.until(fmt.Sprintf("marker %d", i)); len(got) > 0 {
				fail("No Local: the publisher got its own %q", got[0].Payload)
			}
		}
	})
}

// [MQTT-3.2.2-21] [MQTT-3.2.2-22] (5): a client asking for a keep-alive
// over the broker's maximum (60 s here), or for none, is told the maximum
// in CONNACK's Server Keep Alive; one within it is told nothing and keeps
// its own.
func TestServerKeepAlive(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		for _, c := range []struct {
			asked uint16
			want  uint32 // 0: no Server Keep Alive
		}{{600, testKeepAlive}, {0, testKeepAlive}, {30, 0}} {
			conn := dial(t, tg, rawmqtt.V5, fmt.Sprintf("ka-%d", c.asked))
			cn := session(conn.name, false)
			cn.KeepAlive = c.asked
			ack := conn.connect(cn, rawmqtt.Props{})
			got, ok := ack.Props.Int(rawmqtt.PropServerKeepAlive)
			if c.want == 0 && ok {
				fail("keep-alive %d within the maximum: Server Keep Alive %d", c.asked, got)
			}
			if c.want != 0 && (!ok || got != c.want) {
				fail("keep-alive %d: Server Keep Alive %d (present %v), want %d", c.asked, got, ok, c.want)
			}
			conn.disconnect()
		}
	})
}

// [MQTT-3.1.2-24] (3.1.1), [MQTT-3.1.2-22] (5): a client silent for one and
// a half times its keep-alive (1 s here) is disconnected: after its
// keep-alive (the broker sets its deadline just before the CONNACK, hence
// 0.1 s of tolerance) and by 1.5 s, with 2 s to spare for a busy machine.
func TestKeepAliveExpiryDisconnects(t *testing.T) {
	known := map[string]string{mosquitto: "Mosquitto 2.0.11 closes a client silent with a keep-alive of 1 s after 5 to 6 s"}
	each(t, known, func(t *testing.T, tg *target) {
		for _, v := range versions {
			c := dial(t, tg, v, "silent-"+vname(v))
			cn := session(c.name, false)
			cn.KeepAlive = 1
			c.connect(cn, rawmqtt.Props{})
			took := c.expectClosed(wait)
			t.Logf("%s: closed %v after the CONNACK", vname(v), took)
			if took < time.Second-100*time.Millisecond || took > 1500*time.Millisecond+2*time.Second {
				fail("%s: closed after %v, want between 1 s and 1.5 s (+2 s)", vname(v), took)
			}
		}
	})
}

// [MQTT-3.3.4-9] (5): the broker never has more QoS 1 PUBLISHes
// unacknowledged at a client than the client's Receive Maximum, and sends
// the rest as acknowledgements come, in order.
func TestReceiveMaximum(t *testing.T) {
	known := map[string]string{mosquitto: "Mosquitto 2.0.11 sends two more PUBLISHes after one PUBACK: three unacknowledged with Receive Maximum 2"}
	each(t, known, func(t *testing.T, tg *target) {
		const receiveMax, n = 2, 8
		tp := topic(t, "flow")
		sub := dial(t, tg, rawmqtt.V5, "sub")
		var props rawmqtt.Props
		props.SetInt(rawmqtt.PropReceiveMaximum, receiveMax)
		sub.connect(session("sub", false), props)
		sub.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
		pub := open(t, tg, rawmqtt.V5, "pub", false)
		for i := range n {
			pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: fmt.Appendf(nil, "%d", i)})
		}
		// Every publish has been handled (its PUBACK came): a broker that
		// ignores Receive Maximum has them all on their way. Hold the
		// acknowledgements until a PINGRESP shows the connection is
		// caught up to here, then acknowledge one at a time.
		var unacked []rawmqtt.Packet
		got := 0
		sub.send(rawmqtt.Packet{Type: rawmqtt.PINGREQ})
		pinged := true
		for got < n {
			p := sub.next()
			switch p.Type {
			case rawmqtt.PINGRESP:
				pinged = false
			case rawmqtt.PUBLISH:
				if want := fmt.Sprint(got); string(p.Payload) != want {
					fail("delivery %d is %q: out of order", got, p.Payload)
				}
				got++
				unacked = append(unacked, p)
				if len(unacked) > receiveMax {
					fail("%d unacknowledged QoS 1 deliveries with Receive Maximum %d", len(unacked), receiveMax)
				}
			default:
				fail("got %s", rawmqtt.TypeName(p.Type))
			}
			if !pinged && len(unacked) > 0 && (len(unacked) == receiveMax || got == n) {
				sub.ack(unacked[0])
				unacked = unacked[1:]
				sub.send(rawmqtt.Packet{Type: rawmqtt.PINGREQ})
				pinged = true
			}
		}
	})
}

// [MQTT-3.3.2-6] (5): a Message Expiry Interval is forwarded as received
// minus the time the message waited (so at most what was sent, and more
// than 0); a message sent without one is forwarded without one (it does
// not expire, section 3.3.2.3.3).
func TestMessageExpiryForwarded(t *testing.T) {
	each(t, nil, func(t *testing.T, tg *target) {
		tp := topic(t, "expiry")
		sub, pub := pair(t, tg, rawmqtt.V5, tp)
		var props rawmqtt.Props
		props.SetInt(rawmqtt.PropMessageExpiry, 600)
		pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: []byte("expires"), Props: props})
		pub.publish(rawmqtt.Packet{Topic: tp, QoS: 1, Payload: []byte("does not expire")})
		p := sub.expectPublish()
		sub.ack(p)
		if v, ok := p.Props.Int(rawmqtt.PropMessageExpiry); !ok || v == 0 || v > 600 {
			fail("sent with 600 s: forwarded with %d (present %v)", v, ok)
		}
		p = sub.expectPublish()
		sub.ack(p)
		if v, ok := p.Props.Int(rawmqtt.PropMessageExpiry); ok {
			fail("sent without a Message Expiry Interval: forwarded with %d", v)
		}
	})
}
