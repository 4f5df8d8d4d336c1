package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// expiryAsPublished keeps Mochi from telling MQTT 5 subscribers an expiry
// the publisher never set: Mochi v2.7.9 gives a message without one
// limits.message_expiry and writes what is left of it into every PUBLISH
// ([MQTT-3.3.2-6] applies only to a message that has one). A publisher
// that asked for limits.message_expiry or more is clamped to it, and its
// subscribers are not told either: Mochi keeps no trace of the original.
type expiryAsPublished struct {
	mqtt.HookBase
	max int64 // limits.message_expiry in seconds; > 0
}

func (h *expiryAsPublished) ID() string { return "distchat-expiry-as-published" }

func (h *expiryAsPublished) Provides(b byte) bool { return b == mqtt.OnPacketEncode }

// OnPacketEncode runs on every packet Mochi writes, after it set the
// Message Expiry Interval from the message's expiry time.
func (h *expiryAsPublished) OnPacketEncode(_ *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Publish && pk.Expiry == pk.Created+h.max {
		pk.Properties.MessageExpiryInterval = 0
	}
	return pk
}
