package broker

import (
	"cmp"
	"slices"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// resendInOrder resends a resumed session's unacknowledged messages in the
// order they were first sent ([MQTT-4.6.0-6], [MQTT-4.4.0-1]). Mochi v2.7.9
// (Client.ResendInflightMessages) sorts them by creation time in whole
// seconds, unstably, over a map: messages queued within one second, as for
// an offline client, come back in random order. The hook takes them out of
// the old session before Mochi copies them (OnSessionEstablish), and after
// the CONNACK writes them, DUP set, by creation time and then packet
// identifier, the order Mochi assigned them in (OnSessionEstablished).
type resendInOrder struct {
	mqtt.HookBase
	clients *mqtt.Clients
	resent  func(cl *mqtt.Client, pk packets.Packet) // for each resent PUBLISH, as Mochi calls OnQosPublish

	// mu guards held: by client id, the messages taken from a session
	// being resumed, until a new connection of it is established.
	mu   sync.Mutex
	held map[string][]packets.Packet
}

func newResendInOrder(clients *mqtt.Clients, resent func(*mqtt.Client, packets.Packet)) *resendInOrder {
	return &resendInOrder{clients: clients, resent: resent, held: map[string][]packets.Packet{}}
}

func (h *resendInOrder) ID() string { return "distchat-resend-in-order" }

func (h *resendInOrder) Provides(b byte) bool {
	return b == mqtt.OnSessionEstablish || b == mqtt.OnSessionEstablished
}

// OnSessionEstablish runs right before Mochi copies the old session's state
// into cl (inheritClientSession).
func (h *resendInOrder) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if pk.Connect.Clean {
		delete(h.held, cl.ID) // the session is discarded
		return
	}
	old, ok := h.clients.Get(cl.ID)
	if !ok || old == cl {
		return
	}
	for _, p := range old.State.Inflight.GetAll(false) {
		if old.State.Inflight.Delete(p.PacketID) {
			h.held[cl.ID] = append(h.held[cl.ID], p)
		}
	}
}

// OnSessionEstablished runs after the CONNACK, before Mochi reads the
// client's first packet.
func (h *resendInOrder) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.mu.Lock()
	msgs := h.held[cl.ID]
	delete(h.held, cl.ID)
	h.mu.Unlock()
	if len(msgs) == 0 {
		return
	}
	sortSent(msgs)
	for _, p := range msgs {
		cl.State.Inflight.Set(p)
	}
	for _, p := range msgs {
		if p.FixedHeader.Type == packets.Publish {
			p.FixedHeader.Dup = true // [MQTT-3.3.1-1]
			h.resent(cl, p)
		}
		if err := cl.WritePacket(p); err != nil {
			return // the rest stay in flight for the next connection
		}
		if p.FixedHeader.Type == packets.Puback || p.FixedHeader.Type == packets.Pubcomp {
			cl.State.Inflight.Delete(p.PacketID) // as Mochi does: sent once, done
		}
	}
}

// sortSent orders msgs by creation time, then by packet identifier counted
// from just after the largest gap between the identifiers in use, so that
// 65534, 65535, 1, 2 (wrapped) stay in that order.
func sortSent(msgs []packets.Packet) {
	ids := make([]int, len(msgs))
	for i, p := range msgs {
		ids[i] = int(p.PacketID)
	}
	slices.Sort(ids)
	start, gap := ids[0], ids[0]+65536-ids[len(ids)-1]
	for i := 1; i < len(ids); i++ {
		if d := ids[i] - ids[i-1]; d > gap {
			start, gap = ids[i], d
		}
	}
	rank := func(id uint16) int { return (int(id) - start + 65536) % 65536 }
	slices.SortStableFunc(msgs, func(a, b packets.Packet) int {
		return cmp.Or(cmp.Compare(a.Created, b.Created), cmp.Compare(rank(a.PacketID), rank(b.PacketID)))
	})
}
