package roomlog

import (
	"io"
	"net"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// pipeClient is a Mochi client whose writes the test reads: the ids of the
// PUBACKs it is sent arrive on the returned channel.
func pipeClient(t *testing.T) (*mqtt.Server, *mqtt.Client, <-chan uint16) {
	t.Helper()
	srv := mqtt.New(&mqtt.Options{})
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	cl := srv.NewClient(a, "test", "c1", false)
	cl.Properties.ProtocolVersion = 4
	ids := make(chan uint16, 16)
	go func() {
		defer close(ids)
		buf := make([]byte, 4)
		for {
			if _, err := io.ReadFull(b, buf); err != nil {
				return
			}
			if buf[0] == 0x40 && buf[1] == 2 {
				ids <- uint16(buf[2])<<8 | uint16(buf[3])
			}
		}
	}()
	return srv, cl, ids
}

func publishPacket(id uint16) packets.Packet {
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, PacketID: id}
}

// nextID waits for the next PUBACK's id, or fails after a minute (the
// writes are in process: a missing one is a defect, not a slow machine).
func nextID(t *testing.T, ids <-chan uint16) (uint16, bool) {
	t.Helper()
	select {
	case id, ok := <-ids:
		return id, ok
	case <-time.After(time.Minute):
		t.Fatal("no PUBACK written")
		return 0, false
	}
}

// TestAckOrderKeepsPublishOrder: appends that finish out of order get
// their PUBACKs in the order of the publishes.
func TestAckOrderKeepsPublishOrder(t *testing.T) {
	srv, cl, ids := pipeClient(t)
	o := ackOrder{srv: srv}
	slots := []*ackSlot{o.reserve(cl, publishPacket(1)), o.reserve(cl, publishPacket(2)), o.reserve(cl, publishPacket(3))}
	for _, k := range []int{2, 1, 0} { // the last append finishes first
		o.finish(slots[k], packets.CodeSuccess)
	}
	for want := uint16(1); want <= 3; want++ {
		if got, _ := nextID(t, ids); got != want {
			t.Fatalf("PUBACK for %d, want %d", got, want)
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.clients) != 0 {
		t.Fatalf("%d client queues left after every slot finished", len(o.clients))
	}
}

// TestAckOrderDisconnectsOnAFailedAppend: a publish the log could not take
// gets no PUBACK, the ones after it do, and the client's connection is
// closed so that it sends the failed one again.
func TestAckOrderDisconnectsOnAFailedAppend(t *testing.T) {
	srv, cl, ids := pipeClient(t)
	o := ackOrder{srv: srv}
	failed, next := o.reserve(cl, publishPacket(7)), o.reserve(cl, publishPacket(8))
	o.finish(next, packets.CodeSuccess)
	o.finish(failed, noAck)
	if got, _ := nextID(t, ids); got != 8 {
		t.Fatalf("PUBACK for %d, want 8 only", got)
	}
	if !cl.Closed() {
		t.Fatal("the client stays connected after a publish the log could not take")
	}
}
