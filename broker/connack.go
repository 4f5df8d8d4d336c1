package broker

import (
	"fmt"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// connectVerdict is the auth hook's answer to a CONNECT. The two refusals
// are told apart because clients act on the difference: a bad password is
// the user's to fix, an id they may not use is not.
type connectVerdict int

const (
	connectAccepted       connectVerdict = iota
	connectBadCredentials                // unknown user, wrong, empty or missing password
	connectNotAuthorized                 // the client id (or Will) is not the client's to use
)

// MQTT 3.1.1 CONNACK return codes (section 3.2.2.3); 0x80 and up are MQTT 5's.
var (
	connack311BadCredentials   = packets.Code{Code: 0x04, Reason: "bad user name or password"}
	connack311NotAuthorized    = packets.Code{Code: 0x05, Reason: "not authorized"}
	connack311BadProtocolLevel = packets.Code{Code: 0x01, Reason: "unacceptable protocol level"}
	connack311IDRejected       = packets.Code{Code: 0x02, Reason: "identifier rejected"}
)

// code is the CONNACK code refusing a client of protocol version protocol
// (5: MQTT 5). Mochi's own sends 3.1.1 clients 5 for a bad password, not 4.
func (v connectVerdict) code(protocol byte) packets.Code {
	v5 := protocol >= 5
	switch {
	case v == connectBadCredentials && v5:
		return packets.ErrBadUsernameOrPassword
	case v == connectBadCredentials:
		return connack311BadCredentials
	case v5:
		return packets.ErrNotAuthorized
	}
	return connack311NotAuthorized
}

// sendConnack writes a CONNACK refusing cl with code; Mochi then closes it.
func sendConnack(cl *mqtt.Client, code packets.Code) error {
	ack := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code.Code}
	ack.Properties.ReasonString = code.Reason // encoded for MQTT 5 clients only
	if err := cl.WritePacket(ack); err != nil {
		return fmt.Errorf("send CONNACK %#x: %w", code.Code, err)
	}
	return nil
}

// refusal311 refuses an MQTT 3.1 or 3.1.1 CONNECT that Mochi's own checks
// would refuse with a code those versions lack (0x80 and up): with a 3.1.1
// CONNACK code, or, if malformed, by closing without one (section 4.8).
type refusal311 struct {
	connack bool
	code    packets.Code // the CONNACK code, when connack
	why     string       // what is wrong with the CONNECT, for the log
}

// check311 refuses a first CONNECT of MQTT 3.1 or 3.1.1, or returns false.
func check311(pk packets.Packet) (r refusal311, ok bool) {
	if pk.FixedHeader.Type != packets.Connect || pk.ProtocolVersion == 5 {
		return refusal311{}, false
	}
	switch code := pk.ConnectValidate(); {
	case code == packets.ErrProtocolViolationProtocolVersion:
		return refusal311{connack: true, code: connack311BadProtocolLevel, why: code.Reason}, true
	case code == packets.ErrClientIdentifierNotValid:
		return refusal311{connack: true, code: connack311IDRejected, why: code.Reason}, true
	case code != packets.CodeSuccess:
		return refusal311{why: code.Reason}, true
	case !pk.Connect.Clean && pk.Connect.ClientIdentifier == "":
		// 3.1.1 section 3.1.3.1: a persistent session needs a client id.
		return refusal311{connack: true, code: connack311IDRejected, why: "persistent session without a client id"}, true
	}
	return refusal311{}, false
}

// allowEmptyPassword lets a CONNECT with a zero-length password, which MQTT
// allows (3.1.1 section 3.1.3.5), reach the auth hook: Mochi refuses it
// before any hook with 0x82, no MQTT 3.1.1 code; the hook answers 4.
func allowEmptyPassword(pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connect && pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		pk.Connect.PasswordFlag = false
	}
	return pk
}
