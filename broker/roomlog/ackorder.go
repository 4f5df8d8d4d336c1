package roomlog

import (
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// maxPendingAcks bounds a client's appends in flight, past which reading
// its packets waits: Mochi's default Receive Maximum.
const maxPendingAcks = 1024

// noAck marks a failed append: the connection closes after the PUBACKs before
// it, so the client resends it (a 3.1.1 PUBACK cannot refuse; a 5 refusal drops it).
var noAck = packets.Code{Code: 0xff, Reason: "no PUBACK"}

// errNotStored disconnects a client whose publish was not stored (0x88: try again).
var errNotStored = packets.Code{Code: packets.ErrServerUnavailable.Code, Reason: "a publish could not be stored; send it again"}

// ackOrder writes the PUBACKs of appends that finish out of order
// (conversations, partitions) in publish order, as MQTT requires of QoS 1
// ([MQTT-4.6.0-2]): a slot's PUBACK leaves after every earlier slot's.
type ackOrder struct {
	srv     *mqtt.Server
	mu      sync.Mutex // guards clients, queues and slots; taken after no other lock, not while writing
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

// reserve takes cl's next slot for pk, waiting while maxPendingAcks are taken.
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

// finish settles s with code and writes the PUBACKs now due, unless another goroutine is.
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

// disconnect closes cl after a failed append, telling an MQTT 5 client why.
func (o *ackOrder) disconnect(cl *mqtt.Client) {
	if o.srv != nil && cl.Properties.ProtocolVersion == 5 {
		_ = o.srv.DisconnectClient(cl, errNotStored)
		return
	}
	cl.Stop(errNotStored)
}

// puback is the PUBACK of pk with code, as Mochi's buildAck makes it.
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

// AckFlusher is a client connection that holds PUBACKs back until its next
// packets are handled (broker/clientconn.go): the hook writes them before an
// append that waits (a device flush, a cluster), so they do not wait for it.
type AckFlusher interface {
	FlushAcks() error
}

// flushAcks writes cl's held PUBACKs, if any.
func flushAcks(cl *mqtt.Client) {
	if f, ok := cl.Net.Conn.(AckFlusher); ok {
		_ = f.FlushAcks() // a failed write ends the connection; Mochi sees it on its next read
	}
}
