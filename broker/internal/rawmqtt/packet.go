// Package rawmqtt is a raw MQTT 3.1.1 and 5 client for tests: it encodes and
// decodes the control packets byte by byte and hides nothing (no automatic
// PUBACK, PINGREQ, resend or reconnect), so a test sees exactly what a broker
// sends and when, and can send what a full client library never would.
// The conformance tests (broker/conformance) drive brokers with it.
package rawmqtt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Control packet types (section 2.1.2).
const (
	CONNECT     byte = 1
	CONNACK     byte = 2
	PUBLISH     byte = 3
	PUBACK      byte = 4
	PUBREC      byte = 5
	PUBREL      byte = 6
	PUBCOMP     byte = 7
	SUBSCRIBE   byte = 8
	SUBACK      byte = 9
	UNSUBSCRIBE byte = 10
	UNSUBACK    byte = 11
	PINGREQ     byte = 12
	PINGRESP    byte = 13
	DISCONNECT  byte = 14
	AUTH        byte = 15
)

// Protocol versions (the CONNECT's protocol level).
const (
	V311 byte = 4
	V5   byte = 5
)

// typeNames names the packet types in messages.
var typeNames = [...]string{"reserved", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL",
	"PUBCOMP", "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

// TypeName is the packet type's name from the specification.
func TypeName(t byte) string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("type %d", t)
}

// Packet is one MQTT control packet. Which fields mean something depends on
// Type; Props only exist in MQTT 5.
type Packet struct {
	Type byte
	// Dup, QoS and Retain are the PUBLISH fixed-header flags.
	Dup    bool
	QoS    byte
	Retain bool
	// ID is the packet identifier (PUBLISH with QoS > 0, the acks,
	// SUBSCRIBE, UNSUBSCRIBE and their acks).
	ID      uint16
	Topic   string // PUBLISH
	Payload []byte // PUBLISH
	// Reason is the CONNACK return or reason code, or the reason code of
	// an MQTT 5 PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT or AUTH.
	Reason         byte
	SessionPresent bool           // CONNACK
	Reasons        []byte         // SUBACK, UNSUBACK (MQTT 5) return or reason codes
	Subs           []Subscription // SUBSCRIBE
	Filters        []string       // UNSUBSCRIBE
	Connect        *Connect       // CONNECT
	Props          Props          // MQTT 5 only
}

// Subscription is one topic filter of a SUBSCRIBE with its options (the
// options other than QoS are MQTT 5's).
type Subscription struct {
	Filter            string
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte // 0 send retained, 1 only on a new subscription, 2 never
}

// Connect is a CONNECT's variable header and payload.
type Connect struct {
	Version   byte // V311 or V5
	ClientID  string
	Clean     bool // Clean Session (3.1.1), Clean Start (5)
	KeepAlive uint16
	Username  *string
	Password  []byte // nil: no password flag
	Will      *Will
}

// Will is a CONNECT's Will message.
type Will struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	Props   Props // MQTT 5 Will properties
}

// Encode returns the packet's bytes for protocol version v.
func Encode(p Packet, v byte) ([]byte, error) {
	body, flags, err := encodeBody(p, v)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", TypeName(p.Type), err)
	}
	if len(body) > maxRemaining {
		return nil, fmt.Errorf("encode %s: remaining length %d over the maximum", TypeName(p.Type), len(body))
	}
	out := binary.AppendUvarint([]byte{p.Type<<4 | flags}, uint64(len(body))) // a Variable Byte Integer (1.5.5)
	return append(out, body...), nil
}

// maxRemaining is the largest remaining length a varint holds.
const maxRemaining = 268_435_455

func encodeBody(p Packet, v byte) (body []byte, flags byte, err error) {
	// props appends pr in MQTT 5 and keeps appendProps' error in err.
	props := func(b []byte, pr Props, v byte) []byte {
		if v == V5 && err == nil {
			b, err = appendProps(b, pr)
		}
		return b
	}
	switch p.Type {
	case CONNECT:
		if p.Connect == nil {
			return nil, 0, errors.New("no Connect")
		}
		body = encodeConnect(p.Connect, p.Props, props)
	case PUBLISH:
		flags = p.QoS<<1 | bit(p.Dup, 0x08) | bit(p.Retain, 0x01)
		body = appendString(nil, p.Topic)
		if p.QoS > 0 {
			body = appendU16(body, p.ID)
		}
		body = append(props(body, p.Props, v), p.Payload...)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		flags, body = bit(p.Type == PUBREL, 0x02), appendU16(nil, p.ID)
		if v == V5 {
			body = props(append(body, p.Reason), p.Props, v)
		}
	case SUBSCRIBE:
		flags, body = 0x02, props(appendU16(nil, p.ID), p.Props, v)
		for _, s := range p.Subs {
			opts := s.QoS | bit(s.NoLocal, 0x04) | bit(s.RetainAsPublished, 0x08) | s.RetainHandling<<4
			body = append(appendString(body, s.Filter), opts)
		}
	case UNSUBSCRIBE:
		flags, body = 0x02, props(appendU16(nil, p.ID), p.Props, v)
		for _, f := range p.Filters {
			body = appendString(body, f)
		}
	case PINGREQ, PINGRESP:
	case DISCONNECT, AUTH:
		if v == V5 {
			body = props([]byte{p.Reason}, p.Props, v)
		}
	default:
		// CONNACK, SUBACK and UNSUBACK are the broker's to send.
		return nil, 0, errors.New("not a packet this client sends")
	}
	return body, flags, err
}

// encodeConnect is a CONNECT's body at c's own version, its properties
// appended by props.
func encodeConnect(c *Connect, connProps Props, props func([]byte, Props, byte) []byte) []byte {
	flags := bit(c.Clean, 0x02) | bit(c.Password != nil, 0x40) | bit(c.Username != nil, 0x80)
	if c.Will != nil {
		flags |= 0x04 | c.Will.QoS<<3 | bit(c.Will.Retain, 0x20)
	}
	b := appendU16(append(append(appendString(nil, "MQTT"), c.Version), flags), c.KeepAlive)
	b = appendString(props(b, connProps, c.Version), c.ClientID)
	if w := c.Will; w != nil {
		b = appendBinary(appendString(props(b, w.Props, c.Version), w.Topic), w.Payload)
	}
	if c.Username != nil {
		b = appendString(b, *c.Username)
	}
	if c.Password != nil {
		b = appendBinary(b, c.Password)
	}
	return b
}

// bit is mask when set holds, for a packet's flag bytes.
func bit(set bool, mask byte) byte {
	if set {
		return mask
	}
	return 0
}

func appendU16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

func appendString(b []byte, s string) []byte {
	return append(appendU16(b, uint16(len(s))), s...)
}

func appendBinary(b, d []byte) []byte { return append(appendU16(b, uint16(len(d))), d...) }
