package cluster_test

import (
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

// TestSessionLeftBehindIsDropped: a client with a persistent session that
// moves from b1 to b2 leaves no session on b1 queueing the room for it:
// b1 drops it once b2 announces the new one, and a client that comes back
// to b1 starts afresh there.
func TestSessionLeftBehindIsDropped(t *testing.T) {
	bs := brokertest.StartCluster(t, 3)
	connect := func(url string) (paho.Client, bool) {
		t.Helper()
		opts := paho.NewClientOptions().AddBroker(url).SetClientID("erin-phone").SetProtocolVersion(4).
			SetCleanSession(false).SetAutoReconnect(false).SetConnectTimeout(wait)
		c := paho.NewClient(opts)
		tok := c.Connect()
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("connect to %s: %v", url, tok.Error())
		}
		return c, tok.(*paho.ConnectToken).SessionPresent()
	}
	base := bs[0].Stats(t).ClientsTotal // the broker's own inline client
	c, _ := connect(bs[0].URL)
	if tok := c.Subscribe(wire.RoomFilter("lab"), 1, nil); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	c.Disconnect(100)
	if got := bs[0].Stats(t).ClientsTotal; got != base+1 {
		t.Fatalf("b1 holds %d sessions after the client left, want its offline one", got)
	}
	c, _ = connect(bs[1].URL) // the client moves to b2
	c.Disconnect(100)
	deadline := time.Now().Add(wait)
	for bs[0].Stats(t).ClientsTotal != base {
		if time.Now().After(deadline) {
			t.Fatalf("b1 still holds the session of a client that moved to b2 after %s", wait)
		}
		time.Sleep(10 * time.Millisecond) // the announcement crosses the routes
	}
	c, present := connect(bs[0].URL)
	defer c.Disconnect(0)
	if present {
		t.Fatal("b1 resumed the session the client left behind")
	}
}
