package roomlog

import (
	"errors"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// errPayloadTooLarge marks an invalid message whose payload is over
// room_log.max_payload_bytes (wire.MaxPayloadBytes by default).
var errPayloadTooLarge = errors.New("payload too large")

// refusalAck is what OnPublish returns for a message the log refused: for
// an MQTT 5 publisher of a QoS 1 or 2 message, a packets.Code that Mochi
// v2.7.9 turns into a PUBACK with that reason code and Reason String
// (processPublish), which completes the exchange; for every other
// publisher CodeSuccessIgnore, since MQTT 3.1.1 has no negative PUBACK and
// refusing the PUBACK would make the client resend the message forever.
// The Code must not be wrapped: Mochi takes it with a type assertion.
func refusalAck(cl *mqtt.Client, pk packets.Packet, code byte, reason string) error {
	if cl.Properties.ProtocolVersion < 5 || pk.FixedHeader.Qos == 0 {
		return packets.CodeSuccessIgnore
	}
	return packets.Code{Code: code, Reason: reason}
}

// invalidCode is the reason code of an invalid message: packet too large
// when its payload is over the limit, payload format invalid otherwise.
func invalidCode(err error) byte {
	if errors.Is(err, errPayloadTooLarge) {
		return packets.ErrPacketTooLarge.Code // 0x95
	}
	return packets.ErrPayloadFormatInvalid.Code // 0x99
}

// refusalCode is the MQTT 5 PUBACK reason code of a refusal reason.
func refusalCode(reason string) byte {
	switch reason {
	case RefusedUnknownRecipient: // the topic names a recipient the broker does not know
		return packets.ErrTopicNameInvalid.Code // 0x90
	case RefusedMaxConversations, RefusedUserConversations: // a quota the sender reached
		return packets.ErrQuotaExceeded.Code // 0x97
	case RefusedOversized: // larger than what the broker may send
		return packets.ErrPacketTooLarge.Code // 0x95
	}
	return packets.ErrUnspecifiedError.Code
}
