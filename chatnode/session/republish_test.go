package session

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/brokertest"
	"github.com/distchat/distchat/chatnode/wire"
)

// losingClient is a paho client that can lose a room message: armed, its
// next room Publish sends nothing and returns a token that never
// completes, as a client does that has dropped the message from its store.
// It counts the room publishes that go out.
type losingClient struct {
	mqtt.Client
	lose atomic.Bool
	sent atomic.Int64
}

func (c *losingClient) Publish(topic string, qos byte, retained bool, payload interface{}) mqtt.Token {
	if t, err := wire.ParseTopic(topic); err == nil && t.Kind == wire.KindRoom {
		if c.lose.CompareAndSwap(true, false) {
			return hangingToken{done: make(chan struct{})}
		}
		c.sent.Add(1)
	}
	return c.Client.Publish(topic, qos, retained, payload)
}

// hangingToken never completes.
type hangingToken struct{ done chan struct{} }

func (t hangingToken) Wait() bool { <-t.done; return true }
func (t hangingToken) WaitTimeout(d time.Duration) bool {
	select {
	case <-t.done:
		return true
	case <-time.After(d):
		return false
	}
}
func (t hangingToken) Done() <-chan struct{} { return t.done }
func (t hangingToken) Error() error          { return nil }

// TestRepublishWhatTheClientLost: a publish whose token outlives a
// reconnect (the client lost it) is published again under its id and
// reaches the room once; around a reconnect where the client loses nothing,
// nothing is published again.
func TestRepublishWhatTheClientLost(t *testing.T) {
	const after = 100 * time.Millisecond
	tests := []struct {
		name      string
		lose      bool
		messages  int
		published int64 // room publishes that went out
	}{
		{name: "the client lost one", lose: true, messages: 1, published: 1},
		{name: "the client lost nothing", lose: false, messages: 5, published: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := brokertest.Start(t, brokertest.Config(t))
			px := newProxy(t, b.Addr)
			rx := startNode(t, nodeConfig(t, b.URL, "rx", "r1"))
			lc := &losingClient{}
			tx := startNodeOpts(t, nodeConfig(t, px.url(), "tx", "r1"), Options{
				wrapClient:     func(c mqtt.Client) mqtt.Client { lc.Client = c; return lc },
				republishAfter: after,
			})
			waitOnline(t, "r1", rx, tx)
			lc.lose.Store(tt.lose)
			var sent []*Sent
			for range tt.messages {
				m, err := tx.Send(context.Background(), Outgoing{Room: "r1", Body: "around a reconnect"})
				if err != nil {
					t.Fatal(err)
				}
				sent = append(sent, m)
			}
			px.cut(false) // the connection breaks with the publishes in flight; paho reconnects
			for _, m := range sent {
				select {
				case <-m.Done:
					if m.Err != nil {
						t.Fatalf("send: %v", m.Err)
					}
				case <-time.After(30 * time.Second):
					t.Fatal("a message never acknowledged after the reconnect")
				}
			}
			rx.got.waitFor(t, 10*time.Second, "the messages", func(c *collector) bool { return len(c.msgs) >= tt.messages })
			checkComplete(t, rx, map[[2]string]int{{"tx", "r1"}: tt.messages})
			// Long enough for a republish to have happened if one were due.
			time.Sleep(3 * after)
			if got := lc.sent.Load(); got != tt.published {
				t.Errorf("%d room publishes went out, want %d", got, tt.published)
			}
		})
	}
}
