package mqttconn

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
)

// TestPahoOverConn: paho clients on Open exchange QoS 1 messages through
// the real broker over TCP and WebSocket, every one delivered.
func TestPahoOverConn(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.WS = "127.0.0.1:0"
	b := brokertest.Start(t, cfg)
	for _, url := range []string{b.URL, "ws://" + b.Server.WSAddr() + "/"} {
		t.Run(url[:2], func(t *testing.T) { exchange(t, url, nil) })
	}
}

// client connects a paho client through Open; tlsCfg is its TLS config
// (nil: none).
func client(t *testing.T, url, id string, tlsCfg *tls.Config) mqtt.Client {
	t.Helper()
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetCustomOpenConnectionFn(Open).
		SetOrderMatters(false).SetAutoReconnect(false).SetTLSConfig(tlsCfg)
	c := mqtt.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s to %s: %v", id, url, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func exchange(t *testing.T, url string, tlsCfg *tls.Config) {
	const n = 500
	topic := "chat/rooms/t/" + url[:2]
	got := make(chan string, n)
	sub := client(t, url, "sub-"+url[:2], tlsCfg)
	if tok := sub.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	pub := client(t, url, "pub-"+url[:2], tlsCfg)
	toks := make([]mqtt.Token, n)
	for i := range n {
		toks[i] = pub.Publish(topic, 1, false, fmt.Sprintf("m%d", i))
	}
	for i, tok := range toks {
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(seen) < n {
		select {
		case m := <-got:
			seen[m] = true
		case <-deadline:
			t.Fatalf("%d of %d messages received", len(seen), n)
		}
	}
}
