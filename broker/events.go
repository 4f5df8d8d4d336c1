package broker

import (
	"slices"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
)

// Drop causes, as they appear in logs ("cause") and as the keys of /stats's drops.
const (
	dropInflightQuota   = "inflight_quota"    // the subscriber held limits.max_inflight unacknowledged QoS 1 messages
	dropQueueFull       = "queue_full"        // its outbound queue (limits.max_client_writes_pending) was full
	dropExpired         = "expired"           // a queued or unacknowledged QoS 1 message outlived limits.message_expiry
	dropSessionEnded    = "session_ended"     // its session ended while messages to it were unacknowledged
	dropRefusedByClient = "refused_by_client" // it answered a QoS 2 flow with an error reason code (MQTT 5)
	dropInflightBytes   = "inflight_bytes"    // a bound of inflightBytes was reached
	// DropPacketTooLarge: the message is over the Maximum Packet Size of
	// the subscriber's MQTT 5 CONNECT; its node repairs the gap from the
	// room log, whose pages follow the same bound (docs/roomlog.md).
	DropPacketTooLarge = "packet_too_large"
)

// dropCauses are the drop causes, in the order of counters.drops.
var dropCauses = [...]string{dropInflightQuota, dropQueueFull, dropExpired, dropSessionEnded, dropRefusedByClient, DropPacketTooLarge, dropInflightBytes}

// DropCauses lists every drop cause /stats reports, so tools and tests can
// rely on each key being present (zero or not).
var DropCauses = dropCauses[:]

// counters are the broker's own counts, beside Mochi's system.Info.
type counters struct {
	drops        [len(dropCauses)]atomic.Int64 // by cause, as in dropCauses
	authFailures atomic.Int64
	aclDenials   atomic.Int64
	stalled      atomic.Int64 // connections closed by limits.write_timeout

	connectTimeouts atomic.Int64                   // connections closed by limits.connect_timeout
	refused         [refusedPerIP + 1]atomic.Int64 // connections refused at accept, by connRefusal
	acceptErrors    atomic.Int64                   // temporary accept errors retried
}

// eventsHook logs connections, subscriptions and drops with stable field
// names, so an operator can follow a client with jq.
type eventsHook struct {
	mqtt.HookBase
	log       *logrus.Entry
	c         *counters
	maxExpiry int64 // Mochi's MaximumMessageExpiryInterval (s): expired or session ended?
}

func (h *eventsHook) ID() string { return "distchat-events" }

func (h *eventsHook) Provides(b byte) bool {
	return slices.Contains([]byte{mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnSubscribed,
		mqtt.OnUnsubscribed, mqtt.OnPublishDropped, mqtt.OnQosDropped}, b)
}

func (h *eventsHook) client(cl *mqtt.Client) *logrus.Entry {
	return h.log.WithFields(logrus.Fields{"client_id": clip(cl.ID), "user": clip(string(cl.Properties.Username))})
}

func (h *eventsHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	h.client(cl).WithFields(logrus.Fields{"event": logevent.ClientConnected, "remote": cl.Net.Remote,
		"clean_session": pk.Connect.Clean, "protocol": pk.ProtocolVersion}).Info("client_connected")
}

func (h *eventsHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	reason := "client disconnected"
	if err != nil {
		reason = err.Error()
	}
	h.client(cl).WithFields(logrus.Fields{"event": logevent.ClientDisconnected, "reason": reason,
		"session_expires": expire}).Info("client_disconnected")
}

func (h *eventsHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	for i, f := range pk.Filters {
		h.client(cl).WithFields(logrus.Fields{"event": logevent.Subscribed, "filter": clip(f.Filter), "qos": f.Qos,
			"granted": i >= len(codes) || codes[i] < 0x80}).Info("subscribed")
	}
}

func (h *eventsHook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	for _, f := range pk.Filters {
		h.client(cl).WithFields(logrus.Fields{"event": logevent.Unsubscribed, "filter": clip(f.Filter)}).Info("unsubscribed")
	}
}

// OnPublishDropped is Mochi's hook for a full outbound queue.
func (h *eventsHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.drop(cl.ID, pk.TopicName, dropQueueFull)
}

// OnQosDropped is Mochi's hook for an in-flight message removed unfinished.
func (h *eventsHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	switch {
	case pk.FixedHeader.Type == packets.Reserved, // Mochi's second report of an expired message
		cl.IsTakenOver(): // the new connection inherited these messages
		return
	case (pk.FixedHeader.Type == packets.Pubrec || pk.FixedHeader.Type == packets.Pubrel) &&
		pk.ReasonCode >= packets.ErrUnspecifiedError.Code:
		h.drop(cl.ID, pk.TopicName, dropRefusedByClient)
	case h.expired(pk, time.Now().Unix()):
		h.drop(cl.ID, pk.TopicName, dropExpired)
	default:
		h.drop(cl.ID, pk.TopicName, dropSessionEnded)
	}
}

// expired is Mochi's own test (Client.ClearExpiredInflights) for an
// in-flight message past its expiry.
func (h *eventsHook) expired(pk packets.Packet, now int64) bool {
	return (pk.ProtocolVersion == 5 && pk.Expiry > 0 && pk.Expiry < now) ||
		(h.maxExpiry > 0 && now-pk.Created > h.maxExpiry)
}

// drop counts and logs one message not delivered; an unknown cause counts
// as refused_by_client.
func (h *eventsHook) drop(client, topic, cause string) {
	i := slices.Index(dropCauses[:], cause)
	if i < 0 {
		i = slices.Index(dropCauses[:], dropRefusedByClient)
	}
	h.c.drops[i].Add(1)
	h.log.WithFields(logrus.Fields{"event": logevent.MessageDropped, "client_id": clip(client), "topic": clip(topic),
		"cause": cause}).Warn("message_dropped")
}
