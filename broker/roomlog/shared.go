package roomlog

import (
	"errors"
	"fmt"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// AttachStore adds to srv a hook over store, a log shared with other
// brokers (broker/cluster), closed when srv closes.
func AttachStore(srv *mqtt.Server, store Store, cfg config.RoomLog, log *logrus.Entry) (*Hook, error) {
	h := New(store, srv, cfg, log)
	h.shared = true
	if a, ok := store.(AsyncStore); ok {
		h.async = a
		h.acks.srv = srv
	}
	if err := srv.AddHook(h, nil); err != nil {
		return nil, errors.Join(fmt.Errorf("add room log hook: %w", err), store.Close())
	}
	return h, nil
}

// Replicated tells the hook, in log order, of a record a shared log took (for
// the DM index, the cap, and resends after a failover). With live set it
// reaches this broker's subscribers as if published here; a local one (appended
// here) only over an AsyncStore, as Mochi routes it otherwise.
func (h *Hook) Replicated(conv string, rec Record, live, local bool) {
	if local && (!live || h.async == nil) {
		return // the append's completion has done the rest
	}
	e, err := wire.DecodeEnvelope(rec.Data, len(rec.Data))
	if err != nil {
		h.log.WithError(err).WithFields(logrus.Fields{"conv": conv, "seq": rec.Seq}).Error("room log: unreadable replicated record skipped")
		return
	}
	if !local {
		if rec.Seq == 1 {
			h.convs.created("") // a conversation another broker started
		}
		h.dms.add(conv)
		h.resends.remember(conv, e.From, e.ID, rec.Seq)
	}
	if !live {
		return
	}
	topic := wire.RoomTopic(e.Room, e.From)
	if e.Room == "" {
		topic = wire.DMTopic(e.To, e.From)
	}
	// QoS 1, as a member's publish: each subscriber gets its subscription's if lower.
	if err := h.srv.Publish(topic, rec.Data, false, 1); err != nil {
		h.log.WithError(err).WithFields(logrus.Fields{"conv": conv, "seq": rec.Seq}).Error("room log: replicated record not routed; members repair the gap by catch-up")
	}
}

// Reindex rebuilds the DM index from the store's conversations, which a
// shared log may have taken before it tells the hook about new records.
func (h *Hook) Reindex() {
	for _, conv := range h.store.Conversations() {
		h.dms.add(conv)
	}
}

// stored returns conv's record seq, for a resend, and counts it.
func (h *Hook) stored(conv string, seq uint64) ([]byte, error) {
	recs, err := h.store.Read(conv, seq-1, 1)
	if err != nil {
		return nil, fmt.Errorf("read %s #%d: %w", conv, seq, err)
	}
	if len(recs) != 1 || recs[0].Seq != seq {
		return nil, fmt.Errorf("read %s #%d: not in the log's view", conv, seq)
	}
	h.resent.Add(1)
	return recs[0].Data, nil
}

// Restamp lays a record stamped as number 0 out again as number seq, for
// the broker that sequences it (cluster mode): byte for byte what stamping
// there gives, so both route the same record.
func Restamp(data []byte, seq uint64) ([]byte, error) {
	e, err := wire.DecodeEnvelope(data, len(data)) // the size was checked where the record was stamped
	if err != nil {
		return nil, fmt.Errorf("restamp record #%d: %w", seq, err)
	}
	e.RoomSeq = seq
	return e.Encode()
}

// AsyncStore is a Store whose appends finish on another goroutine (the
// replicated log). Mochi handles a client's packets in turn, so waiting in
// OnPublish would cap a client at one append per cluster round trip: the hook
// writes the PUBACK itself once the append is done, in publish order
// (ackorder.go), and the record is routed from the log's view (Replicated).
type AsyncStore interface {
	Store
	// AppendAsync appends as Append does, numbering in call order, and calls
	// done once on another goroutine; done must not block for long.
	AppendAsync(conv string, timeNS int64, encode func(seq uint64) ([]byte, error), done func(seq uint64, err error))
}

// stampAsync appends e to conv's log without waiting: the PUBACK (or MQTT
// 5 refusal) goes after the append, in order; a failed one gets none.
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

// appendDone counts an async append's outcome and returns the PUBACK's code (noAck: none).
func (h *Hook) appendDone(cl *mqtt.Client, pk packets.Packet, conv string, e wire.Envelope, seq uint64, err error) packets.Code {
	var r *refusal
	switch {
	case errors.As(err, new(*DuplicateError)):
		h.resent.Add(1)
		return packets.CodeSuccess
	case errors.As(err, &r):
		return h.discard(cl, pk, r) // acknowledged and discarded (see refusalAck)
	case err != nil:
		h.appendFailed(cl, pk, err)
		return noAck
	}
	h.appendedAs(conv, e.From, e.ID, seq)
	return packets.CodeSuccess
}

// stampShared stores a chat publish in an AsyncStore (routed from the log's
// view): a QoS 2 one before Mochi's PUBREC exchange, others by stampAsync.
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
