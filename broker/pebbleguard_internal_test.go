package broker

import (
	"sync"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	pebblestore "github.com/mochi-mqtt/server/v2/hooks/storage/pebble"
	"github.com/mochi-mqtt/server/v2/packets"
)

// TestGuardedPebbleWritesDuringStop has writers racing the session store's
// Stop, as Mochi's Close does with its event loop: no write may reach the
// closed database (a panic, or a data race under -race), and what was
// written before Stop is in the store when it is opened again.
func TestGuardedPebbleWritesDuringStop(t *testing.T) {
	dir := t.TempDir()
	opts := &pebblestore.Options{Path: dir, Mode: pebblestore.NoSync}
	g := newSessionStore(false)
	if err := g.Init(opts); err != nil {
		t.Fatalf("init: %v", err)
	}
	g.OnRetainMessage(&mqtt.Client{ID: "keep"}, retained("before/stop"), 1)

	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &mqtt.Client{ID: "writer"}
			<-start
			for i := range 200 {
				pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: "x", PacketID: uint16(w*1000 + i + 1)}
				g.OnQosPublish(cl, pk, 0, 0)
				g.OnQosDropped(cl, pk)
				g.OnRetainMessage(cl, retained("during/stop"), 1)
			}
		}()
	}
	close(start)
	if err := g.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	wg.Wait()
	if err := g.Stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}

	again := &guardedPebble{Hook: new(pebblestore.Hook)}
	if err := again.Init(opts); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = again.Stop() })
	msgs, err := again.StoredRetainedMessages()
	if err != nil {
		t.Fatalf("stored retained: %v", err)
	}
	found := false
	for _, m := range msgs {
		found = found || m.TopicName == "before/stop"
	}
	if !found {
		t.Errorf("the retained message written before Stop is gone: %d stored", len(msgs))
	}
}

func retained(topic string) packets.Packet {
	return packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Retain: true},
		TopicName:   topic,
		Payload:     []byte("p"),
	}
}
