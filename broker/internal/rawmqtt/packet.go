// Package rawmqtt is a raw MQTT 3.1.1 and 5 client for tests: it encodes and
// decodes the control packets byte by byte and hides nothing (no automatic
// PUBACK, PINGREQ, resend or reconnect), so a test sees exactly what a broker
// sends and when, and can send what a full client library never would.
// The conformance tests (broker/conformance) drive brokers with it.
package rawmqtt

import (
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
	out := appendVarint([]byte{p.Type<<4 | flags}, uint32(len(body)))
	return append(out, body...), nil
}

// maxRemaining is the largest remaining length a varint holds.
const maxRemaining = 268_435_455

func encodeBody(p Packet, v byte) (body []byte, flags byte, err error) {
	switch p.Type {
	case CONNECT:
		body, err = encodeConnect(p)
	case PUBLISH:
		flags = p.QoS << 1
		if p.Dup {
			flags |= 0x08
		}
		if p.Retain {
			flags |= 0x01
		}
		body = appendString(nil, p.Topic)
		if p.QoS > 0 {
			body = appendU16(body, p.ID)
		}
		if v == V5 {
			if body, err = appendProps(body, p.Props); err != nil {
				return nil, 0, err
			}
		}
		body = append(body, p.Payload...)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		if p.Type == PUBREL {
			flags = 0x02
		}
		body = appendU16(nil, p.ID)
		if v == V5 {
			if body, err = appendProps(append(body, p.Reason), p.Props); err != nil {
				return nil, 0, err
			}
		}
	case SUBSCRIBE:
		flags = 0x02
		body, err = encodeSubscribe(p, v)
	case UNSUBSCRIBE:
		flags = 0x02
		body = appendU16(nil, p.ID)
		if v == V5 {
			if body, err = appendProps(body, p.Props); err != nil {
				return nil, 0, err
			}
		}
		for _, f := range p.Filters {
			body = appendString(body, f)
		}
	case PINGREQ, PINGRESP:
	case DISCONNECT, AUTH:
		if v == V5 {
			body, err = appendProps([]byte{p.Reason}, p.Props)
		}
	default:
		// CONNACK, SUBACK and UNSUBACK are the broker's to send.
		return nil, 0, errors.New("not a packet this client sends")
	}
	return body, flags, err
}

func encodeConnect(p Packet) ([]byte, error) {
	c := p.Connect
	if c == nil {
		return nil, errors.New("no Connect")
	}
	b := appendString(nil, "MQTT")
	b = append(b, c.Version)
	var flags byte
	if c.Clean {
		flags |= 0x02
	}
	if c.Will != nil {
		flags |= 0x04 | c.Will.QoS<<3
		if c.Will.Retain {
			flags |= 0x20
		}
	}
	if c.Password != nil {
		flags |= 0x40
	}
	if c.Username != nil {
		flags |= 0x80
	}
	b = appendU16(append(b, flags), c.KeepAlive)
	var err error
	if c.Version == V5 {
		if b, err = appendProps(b, p.Props); err != nil {
			return nil, err
		}
	}
	b = appendString(b, c.ClientID)
	if w := c.Will; w != nil {
		if c.Version == V5 {
			if b, err = appendProps(b, w.Props); err != nil {
				return nil, err
			}
		}
		b = appendBinary(appendString(b, w.Topic), w.Payload)
	}
	if c.Username != nil {
		b = appendString(b, *c.Username)
	}
	if c.Password != nil {
		b = appendBinary(b, c.Password)
	}
	return b, nil
}

func encodeSubscribe(p Packet, v byte) ([]byte, error) {
	b := appendU16(nil, p.ID)
	var err error
	if v == V5 {
		if b, err = appendProps(b, p.Props); err != nil {
			return nil, err
		}
	}
	for _, s := range p.Subs {
		opts := s.QoS
		if s.NoLocal {
			opts |= 0x04
		}
		if s.RetainAsPublished {
			opts |= 0x08
		}
		opts |= s.RetainHandling << 4
		b = append(appendString(b, s.Filter), opts)
	}
	return b, nil
}

func appendU16(b []byte, v uint16) []byte { return append(b, byte(v>>8), byte(v)) }

func appendString(b []byte, s string) []byte {
	return append(appendU16(b, uint16(len(s))), s...)
}

func appendBinary(b, d []byte) []byte { return append(appendU16(b, uint16(len(d))), d...) }

// appendVarint appends a Variable Byte Integer (section 1.5.5).
func appendVarint(b []byte, v uint32) []byte {
	for {
		c := byte(v % 128)
		v /= 128
		if v > 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}
