package roomlog

import (
	"slices"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/wire"
)

// syncBudget bounds the catch-up reply bytes in Mochi's outbound queues
// (bounded by packets only), or a client asking and never reading would have
// gigabytes queued. A reply is charged to each client on the inbox until
// written, dropped or disconnected, and requests are served while each owes
// less than the budget: a client gets answers at the speed it reads them.
type syncBudget struct {
	max int

	mu         sync.Mutex        // guards pending and inboxAlias; taken after no other lock
	pending    map[string]int    // client id → reply bytes queued; no zero entries
	inboxAlias map[string]uint16 // the MQTT 5 topic alias Mochi gave a client's inbox
}

// over reports whether a client in ids owes the budget or more.
func (b *syncBudget) over(ids []string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.ContainsFunc(ids, func(id string) bool { return b.pending[id] >= b.max })
}

// charge adds n bytes (negative: gives them back) to each client in ids.
func (b *syncBudget) charge(ids []string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if v := b.pending[id] + n; v > 0 {
			made(&b.pending)[id] = v
		} else {
			delete(b.pending, id)
		}
	}
}

// forget drops a client's account: its queue ended with its connection.
func (b *syncBudget) forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.pending, id)
	delete(b.inboxAlias, id) // aliases last as long as their connection
}

// total is the reply bytes queued towards every client.
func (b *syncBudget) total() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for _, v := range b.pending {
		n += int64(v)
	}
	return n
}

// inboxReaders lists the clients a reply on user's inbox goes to.
func (h *Hook) inboxReaders(user string) []string {
	subs := h.srv.Topics.Subscribers(wire.InboxTopic(user))
	ids := make([]string, 0, len(subs.Subscriptions))
	for id := range subs.Subscriptions {
		// Mochi queues nothing for a client that is not connected.
		if cl, ok := h.srv.Clients.Get(id); ok && !cl.Closed() && cl.Net.Conn != nil {
			ids = append(ids, id)
		}
	}
	return ids
}

// throttled counts and logs (rate-limited) a request dropped for unread replies.
func (h *Hook) throttled(fields logrus.Fields) {
	h.syncThrottled.Add(1)
	if ok, held := h.throttleLog.Allow(); ok {
		h.log.WithFields(fields).WithFields(logrus.Fields{"event": logevent.SyncThrottled, "suppressed": held,
			"max_pending_sync_bytes": h.budget.max}).
			Warn("room log: sync request dropped; the client's earlier replies are not read yet")
	}
}

// isReply tells a catch-up reply among the packets Mochi writes to client id,
// learning the inbox's MQTT 5 topic alias from the first (later ones carry it only).
func (b *syncBudget) isReply(id string, pk packets.Packet) bool {
	if pk.FixedHeader.Type != packets.Publish {
		return false
	}
	if pk.TopicName != "" && !strings.HasPrefix(pk.TopicName, inboxPrefix) {
		return false // every chat delivery: no lock on Mochi's write path
	}
	alias := pk.Properties.TopicAlias
	b.mu.Lock()
	defer b.mu.Unlock()
	if pk.TopicName == "" {
		return alias > 0 && b.inboxAlias[id] == alias
	}
	if alias > 0 {
		made(&b.inboxAlias)[id] = alias
	}
	return true
}

var inboxPrefix = wire.InboxTopic("")

// left gives back pk's bytes, if a reply, as it leaves client id's queue.
func (b *syncBudget) left(id string, pk packets.Packet) {
	if b.isReply(id, pk) {
		b.charge([]string{id}, -len(pk.Payload))
	}
}

// OnPacketEncode gives a reply's bytes back as Mochi writes it.
func (h *Hook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	h.budget.left(cl.ID, pk)
	return pk
}

// OnPublishDropped gives back the bytes of a reply Mochi dropped (a full queue).
func (h *Hook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) { h.budget.left(cl.ID, pk) }
