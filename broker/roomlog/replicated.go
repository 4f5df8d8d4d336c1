package roomlog

import (
	"errors"
	"fmt"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// AttachStore adds a hook over store, a log shared with other brokers
// (broker/cluster), to srv. The hook closes the store when srv closes.
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

// Replicated tells the hook about a record a shared log took, from this
// broker or another, in log order. The hook learns the conversation (for
// the DM index and the conversation cap) and the message's id, so a resend
// here after a failover gets the stored record. With live set the record
// is routed to this broker's subscribers, as if published here; a record
// appended here (local) only when the store is an AsyncStore, since Mochi
// routes it otherwise.
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
			h.convs.seen() // a conversation another broker started
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
	// QoS 1, as a member's own publish: Mochi gives each subscriber the
	// lower of this and its subscription's QoS.
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

// stored returns the record conv holds at seq, for a publish the log
// already had, and counts the resend.
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

// Restamp lays out a record stamped as number 0 again with room_seq seq,
// for the broker that sequences its conversation (cluster mode): byte for
// byte what the publishing broker's own stamping gives, so both route the
// same record.
func Restamp(data []byte, seq uint64) ([]byte, error) {
	e, err := wire.DecodeEnvelope(data, len(data)) // the size was checked where the record was stamped
	if err != nil {
		return nil, fmt.Errorf("restamp record #%d: %w", seq, err)
	}
	e.RoomSeq = seq
	return e.Encode()
}
