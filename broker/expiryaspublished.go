package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// expiryAsPublished keeps Mochi from telling MQTT 5 subscribers an expiry
// the publisher never set. Mochi v2.7.9 gives every message the broker's
// limits.message_expiry (Capabilities.MaximumMessageExpiryInterval) as its
// expiry when the publisher set none, and writes what is left of it into
// every PUBLISH as a Message Expiry Interval; a message that does not expire
// ([MQTT-3.3.2-6] applies only to one that has an interval) reaches
// subscribers as if its publisher had given it seven days. The broker still
// drops such a message after limits.message_expiry; the subscriber is just
// not told a property the message did not have. A publisher that asked for
// limits.message_expiry or more is clamped to it, and its subscribers are
// not told either: Mochi keeps no trace of the original interval.
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
