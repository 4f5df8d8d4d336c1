package broker_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/internal/rawmqtt"
	"github.com/distchat/distchat/broker/wire"
)

// dialSession5 connects an MQTT 5 client with a session expiry of an hour
// and returns it with its CONNACK.
func dialSession5(t *testing.T, addr, id string, clean bool) (*rawmqtt.Conn, rawmqtt.Packet) {
	t.Helper()
	c, err := rawmqtt.Dial(addr, rawmqtt.V5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	var props rawmqtt.Props
	props.SetInt(rawmqtt.PropSessionExpiry, 3600)
	ack, err := c.Connect(rawmqtt.Connect{ClientID: id, Clean: clean, KeepAlive: 60}, props, wait)
	if err != nil || ack.Reason != 0 {
		t.Fatalf("connect %s: %v, reason %#x", id, err, ack.Reason)
	}
	return c, ack
}

// An MQTT 5 client whose session outlives its connection (Session Expiry
// Interval) keeps its queued chat messages across a clean restart too.
func TestMQTT5SessionKeepsQueuedChatAcrossRestart(t *testing.T) {
	b := brokertest.Start(t, brokertest.Config(t))
	c, _ := dialSession5(t, b.Addr, "bob-v5", true)
	if err := c.Send(rawmqtt.Packet{Type: rawmqtt.SUBSCRIBE, ID: 1, Subs: []rawmqtt.Subscription{{Filter: wire.DMFilter("bob"), QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Next(wait); err != nil || p.Type != rawmqtt.SUBACK || len(p.Reasons) != 1 || p.Reasons[0] != 1 {
		t.Fatalf("SUBACK: %+v, %v", p, err)
	}
	if err := c.Send(rawmqtt.Packet{Type: rawmqtt.DISCONNECT}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	want := sendDMs(t, b.URL, "dm-1", "dm-2")
	b.Close()

	b2 := brokertest.Start(t, b.Config)
	want = append(want, sendDMs(t, b2.URL, "dm-3")...)
	c, ack := dialSession5(t, b2.Addr, "bob-v5", false)
	if !ack.SessionPresent {
		t.Fatal("CONNACK Session Present 0 after the restart")
	}
	var got []msg
	for len(got) < len(want) {
		p, err := c.Next(wait)
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if p.Type != rawmqtt.PUBLISH {
			continue
		}
		e, err := wire.DecodeEnvelope(p.Payload, len(p.Payload)+1)
		if err != nil || p.QoS != 1 {
			t.Fatalf("PUBLISH %+v: %v", p, err)
		}
		got = append(got, msg{p.Topic, e.ID})
		if err := c.Send(rawmqtt.Packet{Type: rawmqtt.PUBACK, ID: p.ID}); err != nil {
			t.Fatal(err)
		}
	}
	slices.SortFunc(got, func(a, b msg) int { return strings.Compare(a.id, b.id) })
	if !slices.Equal(got, want) {
		t.Errorf("received %v, want %v", got, want)
	}
}
