package roomlog

import (
	"errors"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/distchat/distchat/broker/wire"
)

// AsyncStore is a Store whose appends finish on another goroutine: the
// replicated log (broker/cluster), where an append waits for the other
// brokers for a millisecond or more. Mochi handles a client's packets one
// after another and writes a publish's PUBACK when OnPublish returns, so a
// hook that waited for each append would cap every client at one append
// per round trip to the cluster. Over an AsyncStore the hook takes a chat
// publish, tells Mochi it is handled (no PUBACK, not routed), and writes
// the PUBACK itself when the append is done, each client's PUBACKs in the
// order of its publishes (ackorder.go). The record reaches subscribers from
// the log's view, in log order, on the publisher's broker as on the others
// (Replicated).
type AsyncStore interface {
	Store
	// AppendAsync appends as Append does and calls done once with the
	// result, on another goroutine; done must not block for long. Appends
	// of one conversation are numbered in the order of the calls.
	AppendAsync(conv string, timeNS int64, encode func(seq uint64) ([]byte, error), done func(seq uint64, err error))
}

// stampAsync appends e to conv's log without waiting: the PUBACK (or, for
// an MQTT 5 publisher, the refusal's reason code) goes when the append is
// done, after those of cl's earlier publishes. A failed append gets no
// PUBACK: the client resends it.
func (h *Hook) stampAsync(cl *mqtt.Client, pk packets.Packet, conv string, e wire.Envelope) {
	slot := h.acks.reserve(cl, pk)
	seq, held, err := h.resends.lookup(h.store, conv, e.From, e.ID)
	if err == nil && held {
		if recs, rerr := h.store.Read(conv, seq-1, 1); rerr == nil && len(recs) == 1 && recs[0].Seq == seq {
			h.resent.Add(1) // routed when it was appended
			h.acks.finish(slot, packets.CodeSuccess)
			return
		}
	}
	if err != nil {
		h.appendFailed(cl, pk, err)
		h.acks.finish(slot, noAck)
		return
	}
	now := time.Now().UnixNano()
	encode := func(seq uint64) ([]byte, error) {
		e.RoomSeq, e.BrokerNS = seq, now
		b, err := e.Encode()
		if err == nil {
			err = h.fits(b) // checked on the bytes stored: nothing is written
		}
		return b, err
	}
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
	if seq == 1 {
		h.convs.created(e.From)
	}
	h.appended.Add(1)
	h.dms.add(conv)
	h.resends.remember(conv, e.From, e.ID, seq)
	return packets.CodeSuccess
}

// stampShared stores a chat publish in an AsyncStore. Its record is routed
// from the log's view (Replicated), never by Mochi: QoS 0 and 1 publishes
// are appended without waiting (stampAsync); a QoS 2 publish waits for its
// append and Mochi then runs the PUBREC exchange without routing it.
func (h *Hook) stampShared(cl *mqtt.Client, pk packets.Packet, conv string, e wire.Envelope) (packets.Packet, error) {
	if pk.FixedHeader.Qos < 2 {
		h.stampAsync(cl, pk, conv, e)
		return pk, packets.ErrRejectPacket // handled: the PUBACK is ours to write
	}
	flushAcks(cl)
	_, err := h.storeOnce(conv, e)
	switch {
	case errors.Is(err, errRefused):
		return h.discard(cl, pk, err)
	case err != nil:
		return h.refuse(cl, pk, err)
	}
	return pk, packets.CodeSuccessIgnore
}
