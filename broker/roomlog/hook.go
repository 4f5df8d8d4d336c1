// Package roomlog is the broker's durable, sequenced log of every room and
// direct-message conversation: the piece that makes delivery end to end.
//
// Mochi acknowledges a QoS 1 publish before it stores or routes it, can lose
// a persisted offline queue, replays in random order, and drops messages for a
// slow subscriber (docs/mochi-and-paho.md). So the hook validates, numbers and
// appends each message in OnPublish, the only code Mochi runs before the
// PUBACK. Nodes repair gaps by asking the log (chat/sync/<user>, chat/inbox/<user>).
package roomlog

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"
	"unicode/utf8"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/lograte"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// Hook is the Mochi hook that sequences, stores and serves room messages.
type Hook struct {
	mqtt.HookBase
	store                   Store
	fsync                   bool       // appends are fsynced before the PUBACK (durability: machine)
	shared                  bool       // the store is shared with other brokers: an append waits for them
	async                   AsyncStore // the store when its appends finish later: acks writes PUBACKs
	acks                    ackOrder
	srv                     *mqtt.Server
	cfg                     config.RoomLog
	log                     *logrus.Entry
	mayRead                 atomic.Pointer[func(user, room string) bool]
	userExists              atomic.Pointer[func(user string) bool] // when set, refuses DMs to unknown users
	convs                   convLimits                             // room_log.max_conversations(_per_user)
	maxRecord               int                                    // largest stamped record: limits.max_packet_size less headroom; 0 unbounded
	budget                  syncBudget                             // room_log.max_pending_sync_bytes
	refusals                refusalCounts
	refusalLog, throttleLog *lograte.Limiter // the lines of a flood
	resends                 resends
	plain                   *plainIDs // ids of plain-text publishes, for their resends
	joins                   joins
	routes                  routing // chat publishes between append and routed, for Routed
	dms                     dmIndex // user → DM conversations, for List requests

	appended, resent, invalid, appendErrors, syncs, syncDenied, syncThrottled atomic.Int64
}

// counter is a Store that says how much it holds (FileStore, a replicated log's view).
type counter interface {
	Counts() (convs int, records int64, fileBytes int64)
}

// Stats are the room log's counters, shown under "room_log" in /stats.
type Stats struct {
	Appended         int64            `json:"appended"`
	Resent           int64            `json:"resent"` // resends of stored messages, routed again, not stored twice
	Invalid          int64            `json:"invalid"`
	AppendErrors     int64            `json:"append_errors"`
	SyncsServed      int64            `json:"syncs_served"`
	SyncsDenied      int64            `json:"syncs_denied"`
	SyncsThrottled   int64            `json:"syncs_throttled"`    // requests dropped at room_log.max_pending_sync_bytes unread
	PendingSyncBytes int64            `json:"pending_sync_bytes"` // reply bytes queued to clients now
	Refused          map[string]int64 `json:"refused"`            // acknowledged and discarded by a bound, by reason
	Conversations    int              `json:"conversations"`
	Records          int64            `json:"records"`
	FileBytes        int64            `json:"file_bytes"`
	Fsync            bool             `json:"fsync"`
	// Fsyncs counts group commits; AppendsPerFsync and FsyncMeanMS are their means.
	Fsyncs          int64   `json:"fsyncs,omitempty"`
	AppendsPerFsync float64 `json:"appends_per_fsync,omitempty"`
	FsyncMeanMS     float64 `json:"fsync_mean_ms,omitempty"`
}

// Attach opens the room log configured by cfg in dataDir ("" keeps it in
// memory) and adds its hook to srv. The hook closes the log when srv closes.
func Attach(srv *mqtt.Server, cfg config.RoomLog, durability config.Durability, dataDir string, log *logrus.Entry) (*Hook, error) {
	dir := ""
	if dataDir != "" {
		dir = filepath.Join(dataDir, "roomlog")
	}
	st, err := Open(dir, Options{Fsync: durability == config.DurabilityMachine, MaxMessages: cfg.MaxMessages, MaxAge: cfg.MaxAge, MaxBytes: cfg.MaxBytes})
	if err != nil {
		return nil, err
	}
	convs, records, size := st.Counts()
	log.WithFields(logrus.Fields{"event": logevent.RoomLogOpened, "dir": dir, "conversations": convs, "records": records,
		"file_bytes": size, "torn_bytes": st.Recovery.TornBytes, "compacted_bytes": st.Recovery.CompactedBytes,
		"recovery_ms": float64(st.Recovery.Duration.Microseconds()) / 1000,
		"durability":  durability}).Info("room log opened")
	if err := st.Recovery.CompactionError; err != nil {
		log.WithError(err).WithField("event", logevent.RoomLogNotCompacted).
			Warn("room log: could not give back the space retention freed; the log is used as it is")
	}
	if st.Recovery.TornBytes > 0 {
		log.WithFields(logrus.Fields{"event": logevent.RoomLogTornTail, "torn_bytes": st.Recovery.TornBytes}).
			Warn("room log: cut a torn last record (a write interrupted by a crash); every earlier record is intact")
	}
	h := New(st, srv, cfg, log)
	h.fsync = durability == config.DurabilityMachine
	if err := srv.AddHook(h, nil); err != nil {
		return nil, errors.Join(fmt.Errorf("add room log hook: %w", err), st.Close())
	}
	return h, nil
}

// New returns a hook over any Store; Attach is the usual way in.
func New(store Store, srv *mqtt.Server, cfg config.RoomLog, log *logrus.Entry) *Hook {
	if cfg.PageSize <= 0 {
		cfg.PageSize = 500
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = wire.MaxPayloadBytes
	}
	h := &Hook{store: store, srv: srv, cfg: cfg, log: log, plain: newPlainIDs(),
		refusalLog: lograte.New(time.Now, logBurst, refusalLogEvery), throttleLog: lograte.New(time.Now, logBurst, refusalLogEvery)}
	h.convs.maxTotal, h.convs.maxPerUser = cfg.MaxConversations, cfg.MaxConversationsPerUser
	h.budget.max = cfg.MaxPendingSyncBytes
	if h.budget.max <= 0 {
		h.budget.max = 2 * cfg.MaxPayload
	}
	if srv != nil && srv.Options != nil && srv.Options.Capabilities != nil {
		h.maxRecord = maxRecordFor(int(srv.Options.Capabilities.MaximumPacketSize))
	}
	convs := store.Conversations()
	h.convs.total = len(convs)
	for _, conv := range convs {
		h.dms.add(conv)
	}
	return h
}

// SetReadCheck installs the broker's answer to "may user read room?" (the
// inline client sending catch-up replies skips ACLs); without one, anyone may.
func (h *Hook) SetReadCheck(f func(user, room string) bool) { h.mayRead.Store(&f) }

// ID names the hook in Mochi's logs.
func (h *Hook) ID() string { return "distchat-roomlog" }

// Provides tells Mochi the events the hook handles (Stop is always called).
func (h *Hook) Provides(b byte) bool {
	return slices.Contains([]byte{mqtt.OnPublish, mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnSessionEstablished,
		mqtt.OnDisconnect, mqtt.OnClientExpired, mqtt.OnPacketEncode, mqtt.OnPublishDropped, mqtt.OnPublished}, b)
}

// OnSubscribed records a room's position as a membership begins (see joins).
func (h *Hook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	for i, f := range pk.Filters {
		if i < len(codes) && codes[i] >= packets.ErrUnspecifiedError.Code {
			continue
		}
		if room, ok := roomOfFilter(f.Filter); ok {
			h.joins.subscribed(cl.ID, room, h.store.Last(room))
		}
	}
}

// OnUnsubscribed ends a membership: a later SUBSCRIBE starts a new one.
func (h *Hook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	for _, f := range pk.Filters {
		if room, ok := roomOfFilter(f.Filter); ok {
			h.joins.unsubscribed(cl.ID, room)
		}
	}
}

// OnSessionEstablished forgets a clean session's old memberships.
func (h *Hook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	h.budget.forget(cl.ID) // a new connection starts with an empty queue
	if cl.Properties.Clean {
		h.joins.forget(cl.ID)
	}
}

// OnDisconnect forgets the memberships of a session that ends with it.
func (h *Hook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	h.budget.forget(cl.ID) // its queue ended with the connection
	h.routes.end(cl)       // a publish whose PUBACK could not be written is never routed
	if expire {
		h.joins.forget(cl.ID)
	}
}

// OnClientExpired forgets the memberships of an expired session.
func (h *Hook) OnClientExpired(cl *mqtt.Client) { h.joins.forget(cl.ID) }

// Stop closes the store when the broker closes.
func (h *Hook) Stop() error { return h.store.Close() }

// Stats returns a snapshot of the counters.
func (h *Hook) Stats() Stats {
	s := Stats{Appended: h.appended.Load(), Resent: h.resent.Load(), Invalid: h.invalid.Load(), AppendErrors: h.appendErrors.Load(),
		SyncsServed: h.syncs.Load(), SyncsDenied: h.syncDenied.Load(), SyncsThrottled: h.syncThrottled.Load(),
		PendingSyncBytes: h.budget.total(), Refused: h.refusals.snapshot(), Fsync: h.fsync}
	if c, ok := h.store.(counter); ok {
		s.Conversations, s.Records, s.FileBytes = c.Counts()
	}
	if fs, ok := h.store.(*FileStore); ok { // the one store with a group commit
		if n, took := fs.GroupCommits(); n > 0 {
			s.Fsyncs = n
			s.AppendsPerFsync = float64(s.Appended) / float64(n)
			s.FsyncMeanMS = float64(took.Microseconds()) / 1000 / float64(n)
		}
	}
	return s
}

// OnPublish stamps and stores chat messages, and answers catch-up requests.
func (h *Hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // our own catch-up replies
	}
	t, err := wire.ParseTopic(pk.TopicName)
	if err != nil {
		return pk, nil // not a chat topic; the ACL decides about it
	}
	switch t.Kind {
	case wire.KindRoom, wire.KindDM:
		return h.stamp(cl, pk, t)
	case wire.KindSync:
		h.serveSync(cl, pk, t)
		return pk, packets.CodeSuccessIgnore // acknowledged, never routed
	}
	return pk, nil
}

// stamp validates, numbers and appends a chat message before the PUBACK.
func (h *Hook) stamp(cl *mqtt.Client, pk packets.Packet, t wire.Topic) (packets.Packet, error) {
	e, plain, err := h.envelope(pk.Payload, t)
	if err != nil {
		h.invalid.Add(1)
		h.log.WithError(err).WithFields(logrus.Fields{"event": logevent.MessageInvalid, "client_id": cl.ID, "topic": pk.TopicName,
			"bytes": len(pk.Payload)}).Warn("room log: invalid message acknowledged and discarded")
		// Acknowledged, not routed: without a PUBACK it comes back forever (see refusalAck).
		return pk, refusalAck(cl, pk, invalidCode(err), "invalid message: "+clipID(err.Error()))
	}
	conv := wire.Conversation(t)
	last := h.store.Last(conv)
	if r := h.admit(t, last); r != nil {
		return pk, h.discard(cl, pk, r)
	}
	if plain {
		e.ID = h.plain.idFor(e.From, cl.ID, pk, e.ID)
	}
	if h.async != nil {
		return h.stampShared(cl, pk, conv, e)
	}
	if h.fsync || h.shared {
		flushAcks(cl) // the client's earlier PUBACKs do not wait for this append
	}
	h.routes.begin(cl, conv, last) // ended by OnPublished, after routing
	data, err := h.storeOnce(conv, e)
	if err != nil {
		h.routes.end(cl) // not routed: Mochi may call no OnPublished
		return h.notStored(cl, pk, err)
	}
	pk.Payload = data
	return pk, nil
}

// notStored answers a publish storeOnce did not store: discarded when a
// bound refused it, else no PUBACK, so the client resends it.
func (h *Hook) notStored(cl *mqtt.Client, pk packets.Packet, err error) (packets.Packet, error) {
	if r, ok := errors.AsType[*refusal](err); ok {
		return pk, h.discard(cl, pk, r)
	}
	h.appendFailed(cl, pk, err)
	return pk, packets.ErrRejectPacket
}

// discard counts a message a bound refused and returns its acknowledgement
// (see refusalAck): the message is discarded.
func (h *Hook) discard(cl *mqtt.Client, pk packets.Packet, r *refusal) packets.Code {
	h.refused(cl.ID, pk.TopicName, len(pk.Payload), r)
	return refusalAck(cl, pk, refusalCode(r.reason), clipID(r.Error()))
}

// appendFailed counts and logs a publish the log could not take.
func (h *Hook) appendFailed(cl *mqtt.Client, pk packets.Packet, err error) {
	h.appendErrors.Add(1)
	h.log.WithError(err).WithFields(logrus.Fields{"event": logevent.AppendFailed, "client_id": cl.ID,
		"topic": pk.TopicName}).Error("room log: append failed; publish refused (no PUBACK), the client will resend")
}

// storeOnce appends e to conv's log and returns the stamped record, or the
// stored one for a resend after a lost PUBACK (one racing its original may
// be stored twice; nodes drop the second by its id).
func (h *Hook) storeOnce(conv string, e wire.Envelope) ([]byte, error) {
	seq, held, err := h.resends.lookup(h.store, conv, e.From, e.ID)
	if err != nil {
		return nil, fmt.Errorf("recent ids of %s: %w", conv, err)
	}
	if held {
		if data, err := h.stored(conv, seq); err == nil {
			return data, nil
		}
		// Gone by retention: store it anew.
	}
	now := time.Now().UnixNano()
	var data []byte
	seq, err = h.store.Append(conv, now, func(seq uint64) (_ []byte, err error) {
		data, err = h.stampAs(&e, seq, now)
		return data, err
	})
	if dup, ok := errors.AsType[*DuplicateError](err); ok {
		return h.stored(conv, dup.Seq)
	}
	if err != nil {
		return nil, err
	}
	h.appendedAs(conv, e.From, e.ID, seq)
	return data, nil
}

// stampAs encodes e as record seq stamped at now, if it fits (see fits).
func (h *Hook) stampAs(e *wire.Envelope, seq uint64, now int64) ([]byte, error) {
	e.RoomSeq, e.BrokerNS = seq, now
	b, _ := e.Encode() // never fails
	return b, h.fits(b)
}

// appendedAs counts from/id appended to conv at seq: caps, DM index, resends.
func (h *Hook) appendedAs(conv, from, id string, seq uint64) {
	if seq == 1 {
		h.convs.created(from)
	}
	h.appended.Add(1)
	h.dms.add(conv)
	h.resends.remember(conv, from, id, seq)
}

// envelope decodes a chat payload, or wraps a plain UTF-8 text (plain; e.g.
// mosquitto_pub -m hello). The topic is the truth about sender, room and recipient.
func (h *Hook) envelope(payload []byte, t wire.Topic) (e wire.Envelope, plain bool, err error) {
	if len(payload) == 0 {
		return wire.Envelope{}, false, fmt.Errorf("%w: empty payload", wire.ErrMalformed)
	}
	if len(payload) > h.cfg.MaxPayload {
		return wire.Envelope{}, false, fmt.Errorf("%w: %w: %d bytes, the limit is %d", wire.ErrMalformed, errPayloadTooLarge, len(payload), h.cfg.MaxPayload)
	}
	if trimmed := bytes.TrimLeft(payload, " \t\r\n"); len(trimmed) > 0 && trimmed[0] == '{' {
		if e, err = wire.DecodeEnvelope(payload, h.cfg.MaxPayload); err != nil {
			return wire.Envelope{}, false, err
		}
		e.RoomSeq, e.BrokerNS = 0, 0
	} else {
		if !utf8.Valid(payload) {
			return wire.Envelope{}, false, fmt.Errorf("%w: not valid UTF-8", wire.ErrMalformed)
		}
		e = wire.Envelope{V: wire.Version, ID: "text-" + randomID(), SentNS: time.Now().UnixNano(), Body: string(payload)}
		plain = true
	}
	e.From, e.Room, e.To = t.User, t.Room, t.Recipient // a topic sets one of Room and Recipient
	return e, plain, nil
}

// randomID names a plain-text message, which carries no id of its own.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return hex.EncodeToString(b[:])
}
