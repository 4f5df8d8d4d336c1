package broker

import (
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"
)

// Drop causes, as they appear in logs ("cause") and in /stats.
const (
	// DropInflightQuota: the subscriber already held limits.max_inflight
	// unacknowledged QoS 1 messages. Mochi calls no hook for it.
	DropInflightQuota = "inflight_quota"
	// DropQueueFull: the subscriber's outbound queue
	// (limits.max_client_writes_pending) was full.
	DropQueueFull = "queue_full"
)

// counters are the broker's own counts, beside Mochi's system.Info.
type counters struct {
	dropsInflight atomic.Int64
	dropsQueue    atomic.Int64
	authFailures  atomic.Int64
	aclDenials    atomic.Int64
	stalled       atomic.Int64 // connections closed by limits.write_timeout
}

// eventsHook logs connections, subscriptions and drops with stable field
// names, so an operator can follow a client with jq, and counts drops.
type eventsHook struct {
	mqtt.HookBase
	log *logrus.Entry
	c   *counters
}

func (h *eventsHook) ID() string { return "distchat-events" }

func (h *eventsHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnSubscribed, mqtt.OnUnsubscribed, mqtt.OnPublishDropped:
		return true
	}
	return false
}

func (h *eventsHook) client(cl *mqtt.Client) *logrus.Entry {
	return h.log.WithFields(logrus.Fields{"client_id": cl.ID, "user": string(cl.Properties.Username)})
}

func (h *eventsHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	h.client(cl).WithFields(logrus.Fields{"event": "client_connected", "remote": cl.Net.Remote,
		"clean_session": pk.Connect.Clean, "protocol": pk.ProtocolVersion}).Info("client_connected")
}

func (h *eventsHook) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	reason := "client disconnected"
	if err != nil {
		reason = err.Error()
	}
	h.client(cl).WithFields(logrus.Fields{"event": "client_disconnected", "reason": reason,
		"session_expires": expire}).Info("client_disconnected")
}

func (h *eventsHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	for i, f := range pk.Filters {
		var code byte
		if i < len(codes) {
			code = codes[i]
		}
		h.client(cl).WithFields(logrus.Fields{"event": "subscribed", "filter": f.Filter, "qos": f.Qos,
			"granted": code < 0x80}).Info("subscribed")
	}
}

func (h *eventsHook) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	for _, f := range pk.Filters {
		h.client(cl).WithFields(logrus.Fields{"event": "unsubscribed", "filter": f.Filter}).Info("unsubscribed")
	}
}

// OnPublishDropped is Mochi's hook for a full outbound queue.
func (h *eventsHook) OnPublishDropped(cl *mqtt.Client, pk packets.Packet) {
	h.drop(cl.ID, pk.TopicName, DropQueueFull)
}

// drop counts and logs one message not delivered to client.
func (h *eventsHook) drop(client, topic, cause string) {
	if cause == DropInflightQuota {
		h.c.dropsInflight.Add(1)
	} else {
		h.c.dropsQueue.Add(1)
	}
	h.log.WithFields(logrus.Fields{"event": "message_dropped", "client_id": client, "topic": topic,
		"cause": cause}).Warn("message_dropped")
}
