package conformance

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/internal/rawmqtt"
)

// wait bounds every wait for a packet the broker owes: generous, because
// a test that fails on a busy machine is a defect; a conforming broker
// answers in milliseconds.
const wait = 10 * time.Second

// failure is a check's finding that the broker does not conform. fail
// raises it; each turns it into the check's error.
type failure struct{ err error }

func fail(format string, a ...any) { panic(failure{fmt.Errorf(format, a...)}) }

// run calls check and returns the failure it raised, if any.
func run(t *testing.T, tg *target, check func(t *testing.T, tg *target)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			f, ok := r.(failure)
			if !ok {
				panic(r)
			}
			err = f.err
		}
	}()
	check(t, tg)
	return nil
}

// client is one raw connection with the bookkeeping a test needs: packet
// identifiers, and packets that came while it waited for an ack.
type client struct {
	*rawmqtt.Conn
	t      *testing.T
	name   string
	stash  []rawmqtt.Packet
	nextID uint16
}

// dial opens a connection of protocol version v to tg; name labels it in
// failures and is its client id unless the test connects with another.
func dial(t *testing.T, tg *target, v byte, name string) *client {
	t.Helper()
	c, err := rawmqtt.Dial(tg.addr, v)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &client{Conn: c, t: t, name: name}
}

// session returns the CONNECT of a session named id: a persistent one
// (Clean Session 0; in MQTT 5 Clean Start 0 and a Session Expiry) or not.
func session(id string, persistent bool) rawmqtt.Connect {
	return rawmqtt.Connect{ClientID: id, Clean: !persistent, KeepAlive: 30}
}

// connect sends cn (with props in MQTT 5; a persistent v5 session gets a
// Session Expiry Interval of 300 s unless props set one) and returns the
// CONNACK, which must accept.
func (c *client) connect(cn rawmqtt.Connect, props rawmqtt.Props) rawmqtt.Packet {
	if c.Version() == rawmqtt.V5 && !cn.Clean {
		if _, ok := props.Int(rawmqtt.PropSessionExpiry); !ok {
			props.SetInt(rawmqtt.PropSessionExpiry, 300)
		}
	}
	ack, err := c.Connect(cn, props, wait)
	if err != nil {
		fail("%s: connect: %v", c.name, err)
	}
	if ack.Reason != 0 {
		fail("%s: CONNACK refused with %#x", c.name, ack.Reason)
	}
	return ack
}

// open dials and connects a session in one step.
func open(t *testing.T, tg *target, v byte, id string, persistent bool) *client {
	t.Helper()
	c := dial(t, tg, v, id)
	c.connect(session(id, persistent), rawmqtt.Props{})
	return c
}

func (c *client) id() uint16 {
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	return c.nextID
}

func (c *client) send(p rawmqtt.Packet) {
	if err := c.Send(p); err != nil {
		fail("%s: send %s: %v", c.name, rawmqtt.TypeName(p.Type), err)
	}
}

// next returns the next packet from the broker (stashed ones first).
func (c *client) next() rawmqtt.Packet {
	if len(c.stash) > 0 {
		p := c.stash[0]
		c.stash = c.stash[1:]
		return p
	}
	p, err := c.Next(wait)
	if err != nil {
		fail("%s: waiting for a packet: %v", c.name, err)
	}
	return p
}

// await returns the next packet of type typ with identifier id, keeping
// the packets before it for next.
func (c *client) await(typ byte, id uint16) rawmqtt.Packet {
	for {
		p, err := c.Next(wait)
		if err != nil {
			fail("%s: waiting for %s %d: %v", c.name, rawmqtt.TypeName(typ), id, err)
		}
		if p.Type == typ && p.ID == id {
			return p
		}
		c.stash = append(c.stash, p)
	}
}

// subscribe subscribes to subs and returns the SUBACK's codes, which must
// all grant a QoS.
func (c *client) subscribe(subs ...rawmqtt.Subscription) []byte {
	id := c.id()
	c.send(rawmqtt.Packet{Type: rawmqtt.SUBSCRIBE, ID: id, Subs: subs})
	ack := c.await(rawmqtt.SUBACK, id)
	if len(ack.Reasons) != len(subs) {
		fail("%s: SUBACK has %d codes for %d filters", c.name, len(ack.Reasons), len(subs))
	}
	for i, r := range ack.Reasons {
		if r >= 0x80 {
			fail("%s: SUBACK refused %s with %#x", c.name, subs[i].Filter, r)
		}
	}
	return ack.Reasons
}

// publish sends p (with a fresh packet identifier at QoS 1) and, at QoS 1,
// waits for its PUBACK, which it returns.
func (c *client) publish(p rawmqtt.Packet) rawmqtt.Packet {
	p.Type = rawmqtt.PUBLISH
	if p.QoS > 0 {
		p.ID = c.id()
	}
	c.send(p)
	if p.QoS == 0 {
		return rawmqtt.Packet{}
	}
	return c.await(rawmqtt.PUBACK, p.ID)
}

// expectPublish returns the next packet, which must be a PUBLISH.
func (c *client) expectPublish() rawmqtt.Packet {
	p := c.next()
	if p.Type != rawmqtt.PUBLISH {
		fail("%s: got %s, want PUBLISH", c.name, rawmqtt.TypeName(p.Type))
	}
	return p
}

// ack acknowledges a QoS 1 PUBLISH.
func (c *client) ack(p rawmqtt.Packet) {
	if p.QoS == 1 {
		c.send(rawmqtt.Packet{Type: rawmqtt.PUBACK, ID: p.ID})
	}
}

// until returns the PUBLISHes that arrive before the one with payload
// marker (acknowledging each); a publish of the marker after an action
// bounds "nothing else came" without a timeout, because a broker forwards
// a client's messages, and retained messages of a subscription, in order.
func (c *client) until(marker string) []rawmqtt.Packet {
	var before []rawmqtt.Packet
	for {
		p := c.expectPublish()
		c.ack(p)
		if string(p.Payload) == marker {
			return before
		}
		before = append(before, p)
	}
}

// disconnect sends a DISCONNECT (reason 0 in MQTT 5) and closes.
func (c *client) disconnect() {
	c.send(rawmqtt.Packet{Type: rawmqtt.DISCONNECT})
	_ = c.Close()
}

// expectClosed waits until the broker closes the connection (after a
// DISCONNECT of its own in MQTT 5, or none) and returns how long it took.
func (c *client) expectClosed(within time.Duration) time.Duration {
	start := time.Now()
	for {
		p, err := c.Next(within)
		switch {
		case errors.Is(err, rawmqtt.ErrTimeout):
			fail("%s: still connected after %v", c.name, within)
		case err != nil:
			return time.Since(start)
		case p.Type == rawmqtt.DISCONNECT || p.Type == rawmqtt.PUBLISH:
		default:
			fail("%s: got %s while waiting for the connection to close", c.name, rawmqtt.TypeName(p.Type))
		}
	}
}

// topic returns a topic of the test's own, outside chat/ (open mode lets
// any client use it; distchat's room log leaves it alone).
func topic(t *testing.T, name string) string {
	return "conf/" + strings.ReplaceAll(t.Name(), "/", "-") + "/" + name
}

// versions are the protocol versions a test runs with.
var versions = []byte{rawmqtt.V311, rawmqtt.V5}

func vname(v byte) string {
	if v == rawmqtt.V5 {
		return "v5"
	}
	return "v3.1.1"
}

// pair opens a subscriber of tp (QoS 1) and a publisher, both clean.
func pair(t *testing.T, tg *target, v byte, tp string) (sub, pub *client) {
	t.Helper()
	sub = open(t, tg, v, "sub-"+vname(v), false)
	sub.subscribe(rawmqtt.Subscription{Filter: tp, QoS: 1})
	return sub, open(t, tg, v, "pub-"+vname(v), false)
}
