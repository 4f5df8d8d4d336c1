package roomlog_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/broker/wire"
)

const wait = 10 * time.Second

func connect(t *testing.T, addr, id string) paho.Client {
	t.Helper()
	return connectOpts(t, paho.NewClientOptions().AddBroker("tcp://"+addr).SetClientID(id).SetUsername(id).SetPassword(id+"-pw"))
}

func connectOpts(t *testing.T, o *paho.ClientOptions) paho.Client {
	t.Helper()
	o.SetProtocolVersion(4).SetAutoReconnect(false)
	id := o.ClientID
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// syncAll asks the room log for every message of conv after 0, following
// More, and returns their room sequence numbers.
func syncAll(t *testing.T, c paho.Client, user, conv string) []uint64 {
	t.Helper()
	replies := make(chan wire.SyncReply, 16)
	tok := c.Subscribe(wire.InboxTopic(user), 1, func(_ paho.Client, m paho.Message) {
		var r wire.SyncReply
		if err := json.Unmarshal(m.Payload(), &r); err == nil {
			replies <- r
		}
	})
	if !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatalf("subscribe inbox: %v", tok.Error())
	}
	var seqs []uint64
	after := uint64(0)
	for i := 0; ; i++ {
		req, err := json.Marshal(wire.SyncRequest{V: wire.Version, ReqID: fmt.Sprint(i), Conv: conv, AfterSeq: after})
		if err != nil {
			t.Fatal(err)
		}
		if tok := c.Publish(wire.SyncTopic(user), 1, false, req); !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("sync request: %v", tok.Error())
		}
		select {
		case r := <-replies:
			if r.Error != "" {
				t.Fatalf("sync refused: %s", r.Error)
			}
			for _, m := range r.Messages {
				seqs = append(seqs, m.RoomSeq)
				after = m.RoomSeq
			}
			if !r.More {
				return seqs
			}
		case <-time.After(wait):
			t.Fatal("no sync reply")
		}
	}
}

// TestAcknowledgedSurvivesSIGKILL: the broker as a real process, killed with
// SIGKILL right after acknowledging publishes (Mochi PUBACKs
// before anything is stored). Every acknowledged message is in the room log
// after the restart, in order.
func TestAcknowledgedSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the broker binary")
	}
	br := &brokertest.Process{Bin: brokertest.Build(t), Args: []string{"-tcp", "127.0.0.1:0", "-http", "", "-data", t.TempDir()}}
	br.Start(t)
	pub := connect(t, br.Addr, "alice")
	const n = 200
	for i := 1; i <= n; i++ {
		tok := pub.Publish(wire.RoomTopic("lobby", "alice"), 1, false, fmt.Sprintf("message %d", i))
		if !tok.WaitTimeout(wait) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}
	// The last PUBACK is in: kill at once, no graceful anything.
	if err := br.Kill(t); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("broker exit: %v, want killed", err)
	}
	br.Start(t) // the same data directory, a new port
	seqs := syncAll(t, connect(t, br.Addr, "bob"), "bob", "lobby")
	if len(seqs) != n {
		t.Fatalf("after SIGKILL the log has %d of %d acknowledged messages", len(seqs), n)
	}
	for i, s := range seqs {
		if s != uint64(i+1) {
			t.Fatalf("message %d has room_seq %d", i, s)
		}
	}
}
