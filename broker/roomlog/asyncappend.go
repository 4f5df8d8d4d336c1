package roomlog

import (
	"errors"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/distchat/distchat/broker/wire"
)

// AsyncStore is a Store whose appends finish on another goroutine: the
// replicated log (broker/cluster), where an append waits a millisecond or
// more for the other brokers. Mochi handles a client's packets one after
// another, so waiting in OnPublish would cap every client at one append per
// cluster round trip. Over an AsyncStore the hook writes the PUBACK itself
// when the append is done, in the client's publish order (ackorder.go),
// and the record reaches subscribers from the log's view (Replicated).
type AsyncStore interface {
	Store
	// AppendAsync appends as Append does and calls done once with the
	// result, on another goroutine; done must not block for long. Appends
	// of one conversation are numbered in the order of the calls.
	AppendAsync(conv string, timeNS int64, encode func(seq uint64) ([]byte, error), done func(seq uint64, err error))
}

// stampAsync appends e to conv's log without waiting: the PUBACK (or an
// MQTT 5 refusal) goes when the append is done, after those of cl's earlier
// publishes. A failed append gets none: the client resends it.
func (h *Hook) stampAsync(cl *mqtt.Client, pk packets.Packet, conv string, e wire.Envelope) {
	slot := h.acks.reserve(cl, pk)
	seq, held, err := h.resends.lookup(h.store, conv, e.From, e.ID)
	if err != nil {
		h.appendFailed(cl, pk, err)
		h.acks.finish(slot, noAck)
		return
	}
	if held {
		if _, err := h.stored(conv, seq); err == nil {
			h.acks.finish(slot, packets.CodeSuccess) // routed when it was appended
			return
		}
	}
	now := time.Now().UnixNano()
	encode := func(seq uint64) ([]byte, error) { return h.stampAs(&e, seq, now) }
	h.async.AppendAsync(conv, now, encode, func(seq uint64, err error) {
		h.acks.finish(slot, h.appendDone(cl, pk, conv, e, seq, err))
	})
}

// appendDone counts what an asynchronous append came to and returns the
// PUBACK's reason code (noAck for none).
func (h *Hook) appendDone(cl *mqtt.Client, pk packets.Packet, conv string, e wire.Envelope, seq uint64, err error) packets.Code {
	var dup *DuplicateError
	var r *refusal
	switch {
	case errors.As(err, &dup):
		h.resent.Add(1)
		return packets.CodeSuccess
	case errors.As(err, &r):
		h.refused(cl.ID, pk.TopicName, len(pk.Payload), r)
		if cl.Properties.ProtocolVersion < 5 {
			return packets.CodeSuccess // acknowledged and discarded (see refusalAck)
		}
		return packets.Code{Code: refusalCode(r.reason), Reason: clipID(r.Error())}
	case err != nil:
		h.appendFailed(cl, pk, err)
		return noAck
	}
	h.appendedAs(conv, e.From, e.ID, seq)
	return packets.CodeSuccess
}

// stampShared stores a chat publish in an AsyncStore, routed from the log's
// view (Replicated), never by Mochi. A QoS 2 publish waits for its append
// before Mochi runs the PUBREC exchange; others do not (stampAsync).
func (h *Hook) stampShared(cl *mqtt.Client, pk packets.Packet, conv string, e wire.Envelope) (packets.Packet, error) {
	if pk.FixedHeader.Qos < 2 {
		h.stampAsync(cl, pk, conv, e)
		return pk, packets.ErrRejectPacket // handled: the PUBACK is ours to write
	}
	flushAcks(cl)
	if _, err := h.storeOnce(conv, e); err != nil {
		return h.notStored(cl, pk, err)
	}
	return pk, packets.CodeSuccessIgnore
}
