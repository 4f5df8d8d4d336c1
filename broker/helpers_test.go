package broker_test

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

const wait = 10 * time.Second

// demoUsers are alice, bob (room lobby) and carol (all rooms), password <name>-pw.
func demoUsers(t testing.TB) []config.User {
	t.Helper()
	users := brokertest.Users(t, map[string]string{"alice": "alice-pw", "bob": "bob-pw"}, "lobby")
	return append(users, brokertest.Users(t, map[string]string{"carol": "carol-pw"}, "*")...)
}

// envelope is a valid chat payload from sender with the given id, so the room
// log (when on) accepts it.
func envelope(t testing.TB, room, from, id string) []byte {
	t.Helper()
	b, err := wire.Envelope{V: wire.Version, ID: id, Room: room, From: from, SentNS: time.Now().UnixNano(), Body: "secret chat text " + id}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// msgs receives every message delivered to a client, as decoded envelope ids
// (or the raw payload when it is not an envelope) with the topic.
type msg struct{ topic, id string }

func handler(ch chan<- msg) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		id := string(m.Payload())
		if e, err := wire.DecodeEnvelope(m.Payload(), 0); err == nil {
			id = e.ID
		}
		ch <- msg{m.Topic(), id}
	}
}

type clientOpts struct {
	id, user, pass string
	persistent     bool
	onMsg          chan<- msg
	willTopic      string // a Last Will on this topic, when set
}

// dial connects a paho client (MQTT 3.1.1) and returns the connect error.
func dial(t testing.TB, url string, o clientOpts) (paho.Client, error) {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(o.id).SetUsername(o.user).SetPassword(o.pass).
		SetProtocolVersion(4).SetCleanSession(!o.persistent).SetAutoReconnect(false).SetOrderMatters(false).
		SetConnectTimeout(wait)
	if o.onMsg != nil {
		opts.SetDefaultPublishHandler(handler(o.onMsg))
	}
	if o.willTopic != "" {
		opts.SetWill(o.willTopic, `{"v":1,"user":"x","status":"offline"}`, 1, true)
	}
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(wait) {
		return nil, fmt.Errorf("connect %s: timeout", o.id)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

func mustDial(t testing.TB, url string, o clientOpts) paho.Client {
	t.Helper()
	c, err := dial(t, url, o)
	if err != nil {
		t.Fatalf("connect %s: %v", o.id, err)
	}
	return c
}

// subscribe subscribes at QoS 1 and returns the granted QoS (0x80 = refused).
func subscribe(t testing.TB, c paho.Client, filter string, ch chan<- msg) byte {
	t.Helper()
	var h paho.MessageHandler
	if ch != nil {
		h = handler(ch)
	}
	tok := c.Subscribe(filter, 1, h)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return tok.(*paho.SubscribeToken).Result()[filter]
}

func publish(t testing.TB, c paho.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// expect waits for want (topic, id) messages on ch in any order and fails on
// anything else arriving first.
func expect(t testing.TB, ch <-chan msg, want ...msg) {
	t.Helper()
	expectIgnoring(t, ch, msg{}, want...)
}

// expectIgnoring is expect, skipping any arrival of redelivered: a QoS 1
// message whose PUBACK may not have reached the broker before the
// subscriber went away comes again when its session resumes.
func expectIgnoring(t testing.TB, ch <-chan msg, redelivered msg, want ...msg) {
	t.Helper()
	left := map[msg]int{}
	for _, w := range want {
		left[w]++
	}
	deadline := time.After(wait)
	for n := len(want); n > 0; {
		select {
		case m := <-ch:
			if m == redelivered && redelivered != (msg{}) {
				continue
			}
			if left[m] == 0 {
				t.Fatalf("unexpected message %+v (still waiting for %v)", m, left)
			}
			left[m]--
			n--
		case <-deadline:
			t.Fatalf("timed out; missing %v", left)
		}
	}
}
