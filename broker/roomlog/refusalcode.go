package roomlog

import (
	"errors"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// errPayloadTooLarge marks an invalid message whose payload is over
// room_log.max_payload_bytes (wire.MaxPayloadBytes by default).
var errPayloadTooLarge = errors.New("payload too large")

// refusalCodes are the MQTT 5 PUBACK reason codes of the refusal reasons.
var refusalCodes = map[string]byte{
	// The topic names a recipient the broker does not know.
	RefusedUnknownRecipient: packets.ErrTopicNameInvalid.Code, // 0x90
	// A conversation cap is a quota the sender reached.
	RefusedMaxConversations:  packets.ErrQuotaExceeded.Code, // 0x97
	RefusedUserConversations: packets.ErrQuotaExceeded.Code, // 0x97
	// The stamped record is larger than what the broker may send.
	RefusedOversized: packets.ErrPacketTooLarge.Code, // 0x95
}

// refusalAck is what OnPublish returns for a message the log accepted on
// the wire and refused: for an MQTT 5 publisher of a QoS 1 or 2 message, a
// packets.Code that Mochi v2.7.9 turns into a PUBACK with that reason code
// and the code's text as its Reason String (processPublish; the PUBACK
// completes the exchange, so the client does not resend it); for every
// other publisher CodeSuccessIgnore: acknowledged as a success and
// discarded, since MQTT 3.1.1 has no negative PUBACK and refusing the
// PUBACK altogether would make the client resend the message forever.
//
// The Code must be returned as it is, never wrapped: Mochi takes it with a
// type assertion.
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

// refusalCode is the reason code of a refusal reason (unspecified error for
// a reason without one of its own).
func refusalCode(reason string) byte {
	if c, ok := refusalCodes[reason]; ok {
		return c
	}
	return packets.ErrUnspecifiedError.Code
}
