package broker

import (
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TestRetainGuard: what each event takes, and whom it holds back.
func TestRetainGuard(t *testing.T) {
	wildcard := subscribePacket("chat/presence/+")
	exact := subscribePacket("chat/presence/bob")
	retained := publishPacket(true)
	plain := publishPacket(false)
	inline := &mqtt.Client{Net: mqtt.ClientConnection{Inline: true}}

	type step func(g *retainGuard, cl *mqtt.Client)
	// A SUBSCRIBE as Mochi handles it: OnSubscribe, then its SUBACK
	// written, then the retained scan; marked only stops before the SUBACK.
	marked := func(pk packets.Packet) step {
		return func(g *retainGuard, cl *mqtt.Client) { g.OnSubscribe(cl, pk) }
	}
	subscribe := func(pk packets.Packet) step {
		return func(g *retainGuard, cl *mqtt.Client) {
			g.OnSubscribe(cl, pk)
			g.OnPacketSent(cl, packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Suback}}, nil)
		}
	}
	publish := func(pk packets.Packet) step {
		return func(g *retainGuard, cl *mqtt.Client) {
			if _, err := g.OnPublish(cl, pk); err != nil {
				t.Errorf("OnPublish: %v", err)
			}
		}
	}
	stored := func(pk packets.Packet) step {
		return func(g *retainGuard, cl *mqtt.Client) {
			publish(pk)(g, cl)
			g.OnRetainMessage(cl, pk, 1)
		}
	}
	will := func(w mqtt.Will) step {
		return func(g *retainGuard, cl *mqtt.Client) {
			if _, err := g.OnWill(cl, w); err != nil {
				t.Errorf("OnWill: %v", err)
			}
		}
	}
	cases := []struct {
		name          string
		first, second step
		firstIsInline bool
		blocks        bool
	}{
		{"wildcard subscribe holds back a retained publish", subscribe(wildcard), publish(retained), false, true},
		{"retained publish holds back a wildcard subscribe", publish(retained), subscribe(wildcard), false, true},
		{"retained will holds back a wildcard subscribe", will(mqtt.Will{Retain: true}), subscribe(wildcard), false, true},
		{"wildcard subscribes share", subscribe(wildcard), subscribe(wildcard), false, false},
		{"a wildcard subscribe holds nothing until its SUBACK is written", marked(wildcard), publish(retained), false, false},
		{"a retained publish holds nothing once stored", stored(retained), subscribe(wildcard), false, false},
		{"exact subscribe takes nothing", subscribe(exact), publish(retained), false, false},
		{"plain publish takes nothing", publish(plain), subscribe(wildcard), false, false},
		{"delayed will takes nothing", will(mqtt.Will{Retain: true, WillDelayInterval: 5}), subscribe(wildcard), false, false},
		{"the inline client takes nothing", publish(retained), subscribe(wildcard), true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newRetainGuard()
			a, b := &mqtt.Client{ID: "a"}, &mqtt.Client{ID: "b"}
			if tc.firstIsInline {
				a = inline
			}
			tc.first(g, a)
			done := make(chan struct{})
			go func() {
				defer close(done)
				tc.second(g, b)
			}()
			if tc.blocks {
				select {
				case <-done:
					t.Fatal("the second event went ahead while the first held the guard")
				case <-time.After(50 * time.Millisecond):
				}
			}
			g.OnPacketProcessed(a, packets.Packet{}, nil)
			g.OnWillSent(a, packets.Packet{})
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the second event still waits after the first released the guard")
			}
			g.OnPacketProcessed(b, packets.Packet{}, nil)
			if len(g.held) != 0 || g.holders.Load() != 0 {
				t.Fatalf("still held after release: %v", g.held)
			}
			if !g.tree.TryLock() {
				t.Fatal("the guard is still held after every release")
			}
			g.tree.Unlock()
		})
	}
}

// TestRetainGuardReleaseWithoutTake: a packet that took nothing releases
// nothing (an unlock of an unlocked mutex would crash the broker).
func TestRetainGuardReleaseWithoutTake(t *testing.T) {
	g := newRetainGuard()
	cl := &mqtt.Client{ID: "a"}
	g.OnPacketProcessed(cl, packets.Packet{}, nil)
	g.OnWillSent(cl, packets.Packet{})
	suback := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Suback}}
	g.OnPacketSent(cl, suback, nil) // no SUBSCRIBE marked: takes nothing
	g.OnSubscribe(cl, subscribePacket("chat/presence/+"))
	g.OnSubscribe(cl, subscribePacket("chat/presence/+"))
	g.OnPacketSent(cl, suback, nil)
	g.OnPacketSent(cl, suback, nil) // held already: not taken twice
	g.OnPacketProcessed(cl, packets.Packet{}, nil)
	g.OnRetainMessage(cl, publishPacket(true), 1) // released already
	if !g.tree.TryLock() {
		t.Fatal("the guard is still held after its release")
	}
	g.tree.Unlock()
	if err := g.publishRetained(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if g.held[cl] != guardNone || guardShared.String() != "shared" || guardExclusive.String() != "exclusive" || guardNone.String() != "none" || guardPending.String() != "pending" {
		t.Fatalf("held %v", g.held)
	}
}

func subscribePacket(filter string) packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Subscribe}, Filters: packets.Subscriptions{{Filter: filter, Qos: 1}}}
}

func publishPacket(retain bool) packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: retain, Qos: 1}, TopicName: "chat/presence/bob", Payload: []byte("{}")}
}
