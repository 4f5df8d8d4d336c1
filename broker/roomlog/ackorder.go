package roomlog

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// maxPendingAcks bounds a client's publishes whose appends are in flight
// (asyncappend.go): beyond it Mochi's reading of its packets waits. It is
// Mochi's default Receive Maximum.
const maxPendingAcks = 1024

// noAck (no MQTT reason code) marks a failed append: the connection closes
// once the PUBACKs before it are written, so the client resends it on its
// next one (an MQTT 3.1.1 PUBACK cannot refuse; an MQTT 5 refusal drops it).
var noAck = packets.Code{Code: 0xff, Reason: "no PUBACK"}

// errNotStored is why a client whose publish the log could not take is
// disconnected (0x88, server unavailable: try again, here or elsewhere).
var errNotStored = packets.Code{Code: packets.ErrServerUnavailable.Code, Reason: "a publish could not be stored; send it again"}

// ackOrder writes the PUBACKs of publishes whose appends finish out of
// order (several conversations, several partitions) in the order the
// client sent the publishes, as MQTT requires of QoS 1 ([MQTT-4.6.0-2]):
// each client has a queue of slots, and a finished slot's PUBACK leaves
// once every slot before it has.
type ackOrder struct {
	srv *mqtt.Server
	// mu guards clients and the fields of every queue and slot; taken
	// after no other lock, and never held while a PUBACK is written.
	mu      sync.Mutex
	clients map[*mqtt.Client]*ackQueue
}

// ackQueue is one client's publishes in flight, oldest first.
type ackQueue struct {
	cl       *mqtt.Client
	slots    []*ackSlot
	draining bool          // a goroutine is writing this queue's PUBACKs
	room     chan struct{} // a token per slot: at most maxPendingAcks
}

// ackSlot is one publish waiting for its append.
type ackSlot struct {
	q        *ackQueue
	pk       packets.Packet
	finished bool
	code     packets.Code
}

// reserve takes cl's next slot for pk, waiting while cl has
// maxPendingAcks publishes in flight.
func (o *ackOrder) reserve(cl *mqtt.Client, pk packets.Packet) *ackSlot {
	o.mu.Lock()
	q := o.clients[cl]
	if q == nil {
		q = &ackQueue{cl: cl, room: make(chan struct{}, maxPendingAcks)}
		made(&o.clients)[cl] = q
	}
	s := &ackSlot{q: q, pk: pk}
	q.slots = append(q.slots, s)
	o.mu.Unlock()
	q.room <- struct{}{}
	return s
}

// finish settles s with code and writes every PUBACK now due on its
// client, unless another goroutine is writing them already.
func (o *ackOrder) finish(s *ackSlot, code packets.Code) {
	q := s.q
	o.mu.Lock()
	s.finished, s.code = true, code
	if q.draining {
		o.mu.Unlock()
		return
	}
	q.draining = true
	for {
		n := 0
		for n < len(q.slots) && q.slots[n].finished {
			n++
		}
		if n == 0 {
			q.draining = false
			if len(q.slots) == 0 && o.clients[q.cl] == q {
				delete(o.clients, q.cl)
			}
			o.mu.Unlock()
			return
		}
		due := q.slots[:n:n]
		q.slots = q.slots[n:]
		o.mu.Unlock()
		o.write(q, due)
		o.mu.Lock()
	}
}

// write sends due's PUBACKs in order and frees their room; a noAck slot
// closes the connection after the others are written.
func (o *ackOrder) write(q *ackQueue, due []*ackSlot) {
	failed := false
	for _, s := range due {
		switch {
		case s.code == noAck:
			failed = true
		case s.pk.FixedHeader.Qos == 1:
			_ = q.cl.WritePacket(o.puback(s.pk, s.code)) // a closed client resends: the log knows the message
		}
		<-q.room
	}
	flushAcks(q.cl) // held PUBACKs leave now, not at the client's next packet
	if failed {
		o.disconnect(q.cl)
	}
}

// disconnect closes cl's connection after a publish the log could not take,
// telling an MQTT 5 client why (MQTT 3.1.1 has no server DISCONNECT).
func (o *ackOrder) disconnect(cl *mqtt.Client) {
	if o.srv != nil && cl.Properties.ProtocolVersion == 5 {
		_ = o.srv.DisconnectClient(cl, errNotStored)
		return
	}
	cl.Stop(errNotStored)
}

// puback is the PUBACK of pk with code, as Mochi builds one (buildAck):
// the publish's properties unless the server is configured otherwise, and
// the reason string of a refusal.
func (o *ackOrder) puback(pk packets.Packet, code packets.Code) packets.Packet {
	props := pk.Properties
	if o.srv != nil && o.srv.Options.Capabilities.Compatibilities.NoInheritedPropertiesOnAck {
		props = packets.Properties{}
	}
	if code.Code >= packets.ErrUnspecifiedError.Code {
		props.ReasonString = code.Reason
	}
	return packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Puback}, PacketID: pk.PacketID,
		ReasonCode: code.Code, Properties: props, Created: time.Now().Unix()}
}

// AckFlusher is a client connection that holds PUBACKs back until the
// client's next packets are handled (broker/clientconn.go): before an append
// that waits (a device flush, a cluster) the hook has them written, so
// earlier publishes' PUBACKs do not wait for it.
type AckFlusher interface {
	FlushAcks() error
}

// flushAcks writes cl's held PUBACKs, if any.
func flushAcks(cl *mqtt.Client) {
	if f, ok := cl.Net.Conn.(AckFlusher); ok {
		_ = f.FlushAcks() // a failed write ends the connection; Mochi sees it on its next read
	}
}
