package broker

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

func TestInflightBytesAccounting(t *testing.T) {
	delivery := func(id uint16, n int) packets.Packet {
		return packets.Packet{PacketID: id, TopicName: "t", Payload: make([]byte, n-1)}
	}
	a, b := &mqtt.Client{ID: "a"}, &mqtt.Client{ID: "b"}
	tests := []struct {
		name      string
		perClient int64
		total     int64
		run       func(h *inflightBytes)
		wantHeld  int64
		admitA    bool
		admitB    bool
	}{
		{name: "nothing held: admitted even with a tiny bound", perClient: 1, total: 1,
			run: func(h *inflightBytes) {}, wantHeld: 0, admitA: true, admitB: true},
		{name: "per-client bound reached", perClient: 100,
			run: func(h *inflightBytes) {
				h.OnQosPublish(a, delivery(1, 60), 0, 0)
				h.OnQosPublish(a, delivery(2, 40), 0, 0)
			}, wantHeld: 100, admitA: false, admitB: true},
		{name: "a resend replaces the size of its packet id", perClient: 100,
			run: func(h *inflightBytes) {
				h.OnQosPublish(a, delivery(1, 60), 0, 0)
				h.OnQosPublish(a, delivery(1, 60), 0, 1)
			}, wantHeld: 60, admitA: true, admitB: true},
		{name: "PUBACK and drop release", perClient: 100,
			run: func(h *inflightBytes) {
				h.OnQosPublish(a, delivery(1, 60), 0, 0)
				h.OnQosPublish(a, delivery(2, 60), 0, 0)
				h.OnQosComplete(a, packets.Packet{PacketID: 1})
				h.OnQosDropped(a, packets.Packet{PacketID: 2})
				h.OnQosComplete(a, packets.Packet{PacketID: 9}) // unknown id: no effect
			}, wantHeld: 0, admitA: true, admitB: true},
		{name: "global bound stops a client under its own bound", perClient: 1000, total: 100,
			run: func(h *inflightBytes) {
				h.OnQosPublish(a, delivery(1, 80), 0, 0)
				h.OnQosPublish(b, delivery(1, 30), 0, 0)
			}, wantHeld: 110, admitA: false, admitB: false},
		{name: "an ended session is forgotten", perClient: 10,
			run: func(h *inflightBytes) {
				h.OnQosPublish(a, delivery(1, 50), 0, 0)
				h.OnQosPublish(b, delivery(1, 50), 0, 0)
				h.OnDisconnect(a, nil, true)
				h.OnDisconnect(b, nil, false) // persistent: kept
			}, wantHeld: 50, admitA: true, admitB: false},
		{name: "an expired session is forgotten", perClient: 10,
			run: func(h *inflightBytes) {
				h.OnQosPublish(a, delivery(1, 50), 0, 0)
				h.OnClientExpired(a)
			}, wantHeld: 0, admitA: true, admitB: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newInflightBytes(tt.perClient, tt.total)
			tt.run(h)
			if got := h.sum.Load(); got != tt.wantHeld {
				t.Errorf("held = %d, want %d", got, tt.wantHeld)
			}
			if got := h.admit("a"); got != tt.admitA {
				t.Errorf("admit(a) = %v, want %v", got, tt.admitA)
			}
			if got := h.admit("b"); got != tt.admitB {
				t.Errorf("admit(b) = %v, want %v", got, tt.admitB)
			}
		})
	}
}
