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

// MQTT 3.1.1 CONNACK return codes (section 3.2.2.3). It has no others: the
// 0x80+ reason codes are MQTT 5's.
var (
	connack311BadCredentials = packets.Code{Code: 0x04, Reason: "bad user name or password"}
	connack311NotAuthorized  = packets.Code{Code: 0x05, Reason: "not authorized"}
	// Codes for what Mochi's checks before any auth hook refuse.
	connack311BadProtocolLevel = packets.Code{Code: 0x01, Reason: "unacceptable protocol level"}
	connack311IDRejected       = packets.Code{Code: 0x02, Reason: "identifier rejected"}
)

// code is the CONNACK code refusing a client of protocol version protocol
// (3 or 4: MQTT 3.1 and 3.1.1; 5: MQTT 5). Mochi's own mapping sends 3.1.1
// clients 5 ("not authorized") for a bad password; this one sends 4.
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

// refuseConnect writes the CONNACK that refuses cl with v's code for its
// protocol version; Mochi then closes the connection.
func refuseConnect(cl *mqtt.Client, v connectVerdict) error {
	code := v.code(cl.Properties.ProtocolVersion)
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

// check311 returns the refusal of a first CONNECT of MQTT 3.1 or 3.1.1, or
// ok false when Mochi may go on with it.
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

// allowEmptyPassword lets a CONNECT with a zero-length password reach the
// auth hook. MQTT allows one (3.1.1 section 3.1.3.5: 0 to 65535 bytes), but
// Mochi refuses it before any hook runs, with 0x82 "protocol violation",
// which is no MQTT 3.1.1 code at all. With the flag cleared the auth hook
// sees an empty password and answers "bad user name or password".
func allowEmptyPassword(pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connect && pk.Connect.PasswordFlag && len(pk.Connect.Password) == 0 {
		pk.Connect.PasswordFlag = false
	}
	return pk
}
