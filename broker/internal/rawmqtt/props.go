package rawmqtt

import (
	"errors"
	"fmt"
	"sort"
)

// MQTT 5 property identifiers (section 2.2.2.2) that the tests use.
const (
	PropPayloadFormat      byte = 0x01
	PropMessageExpiry      byte = 0x02
	PropContentType        byte = 0x03
	PropResponseTopic      byte = 0x08
	PropCorrelationData    byte = 0x09
	PropSubscriptionID     byte = 0x0B
	PropSessionExpiry      byte = 0x11
	PropAssignedClientID   byte = 0x12
	PropServerKeepAlive    byte = 0x13
	PropAuthMethod         byte = 0x15
	PropAuthData           byte = 0x16
	PropRequestProblemInfo byte = 0x17
	PropWillDelay          byte = 0x18
	PropRequestRespInfo    byte = 0x19
	PropResponseInfo       byte = 0x1A
	PropServerReference    byte = 0x1C
	PropReasonString       byte = 0x1F
	PropReceiveMaximum     byte = 0x21
	PropTopicAliasMaximum  byte = 0x22
	PropTopicAlias         byte = 0x23
	PropMaximumQoS         byte = 0x24
	PropRetainAvailable    byte = 0x25
	PropUser               byte = 0x26
	PropMaximumPacketSize  byte = 0x27
	PropWildcardSubs       byte = 0x28
	PropSubIDsAvailable    byte = 0x29
	PropSharedSubs         byte = 0x2A
)

// propKind is how a property's value is encoded.
type propKind int

const (
	kindByte propKind = iota + 1
	kindU16
	kindU32
	kindVarint
	kindString
	kindBinary
	kindPair
)

// propKinds is the spec's table of property types; an identifier not in it
// is a malformed packet.
var propKinds = map[byte]propKind{
	PropPayloadFormat: kindByte, PropMessageExpiry: kindU32, PropContentType: kindString,
	PropResponseTopic: kindString, PropCorrelationData: kindBinary, PropSubscriptionID: kindVarint,
	PropSessionExpiry: kindU32, PropAssignedClientID: kindString, PropServerKeepAlive: kindU16,
	PropAuthMethod: kindString, PropAuthData: kindBinary, PropRequestProblemInfo: kindByte,
	PropWillDelay: kindU32, PropRequestRespInfo: kindByte, PropResponseInfo: kindString,
	PropServerReference: kindString, PropReasonString: kindString, PropReceiveMaximum: kindU16,
	PropTopicAliasMaximum: kindU16, PropTopicAlias: kindU16, PropMaximumQoS: kindByte,
	PropRetainAvailable: kindByte, PropUser: kindPair, PropMaximumPacketSize: kindU32,
	PropWildcardSubs: kindByte, PropSubIDsAvailable: kindByte, PropSharedSubs: kindByte,
}

// UserProperty is one MQTT 5 user property: a name and value pair, which may
// repeat and whose order the broker must keep ([MQTT-3.3.2-18]).
type UserProperty struct{ Key, Value string }

// Props are an MQTT 5 packet's properties. Numbers (byte, two- and four-byte
// integers) are in Ints, strings in Strs, binary data in Bins, keyed by
// property identifier; Subscription Identifiers and user properties repeat,
// so they are lists in the order they came. The zero value is no properties.
type Props struct {
	Ints   map[byte]uint32
	Strs   map[byte]string
	Bins   map[byte][]byte
	SubIDs []uint32
	User   []UserProperty
}

// Int returns the numeric property id and whether it is present.
func (p Props) Int(id byte) (uint32, bool) {
	v, ok := p.Ints[id]
	return v, ok
}

// SetInt sets the numeric property id (a byte, two- or four-byte integer).
func (p *Props) SetInt(id byte, v uint32) {
	if p.Ints == nil {
		p.Ints = map[byte]uint32{}
	}
	p.Ints[id] = v
}

// SetStr sets the string property id.
func (p *Props) SetStr(id byte, v string) {
	if p.Strs == nil {
		p.Strs = map[byte]string{}
	}
	p.Strs[id] = v
}

// SetBin sets the binary property id.
func (p *Props) SetBin(id byte, v []byte) {
	if p.Bins == nil {
		p.Bins = map[byte][]byte{}
	}
	p.Bins[id] = v
}

// appendProps appends the property length and the properties, in
// identifier order (repeated ones in their order).
func appendProps(b []byte, p Props) ([]byte, error) {
	var body []byte
	ids := make([]int, 0, len(p.Ints)+len(p.Strs)+len(p.Bins))
	for id := range p.Ints {
		ids = append(ids, int(id))
	}
	for id := range p.Strs {
		ids = append(ids, int(id))
	}
	for id := range p.Bins {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	for _, i := range ids {
		id := byte(i)
		var err error
		if body, err = appendProp(body, id, p); err != nil {
			return nil, err
		}
	}
	for _, s := range p.SubIDs {
		body = appendVarint(append(body, PropSubscriptionID), s)
	}
	for _, u := range p.User {
		body = appendString(appendString(append(body, PropUser), u.Key), u.Value)
	}
	return append(appendVarint(b, uint32(len(body))), body...), nil
}

// appendProp appends the single-valued property id from p.
func appendProp(body []byte, id byte, p Props) ([]byte, error) {
	body = append(body, id)
	switch propKinds[id] {
	case kindByte:
		return append(body, byte(p.Ints[id])), nil
	case kindU16:
		return appendU16(body, uint16(p.Ints[id])), nil
	case kindU32:
		v := p.Ints[id]
		return append(body, byte(v>>24), byte(v>>16), byte(v>>8), byte(v)), nil
	case kindString:
		return appendString(body, p.Strs[id]), nil
	case kindBinary:
		return appendBinary(body, p.Bins[id]), nil
	}
	return nil, fmt.Errorf("property %#x: not a single-valued property of its map", id)
}

// errDuplicate is a property that may appear once, twice ([MQTT-2.2.2-2]).
var errDuplicate = errors.New("property appears twice")

// readProps reads a property length and the properties that follow.
func (r *reader) readProps() (Props, error) {
	var p Props
	n, err := r.varint()
	if err != nil {
		return p, fmt.Errorf("property length: %w", err)
	}
	sub, err := r.sub(int(n))
	if err != nil {
		return p, fmt.Errorf("properties: %w", err)
	}
	for !sub.done() {
		id, err := sub.byte()
		if err != nil {
			return p, err
		}
		if err := sub.readProp(&p, id); err != nil {
			return p, fmt.Errorf("property %#x: %w", id, err)
		}
	}
	return p, nil
}

func (r *reader) readProp(p *Props, id byte) error {
	kind, ok := propKinds[id]
	if !ok {
		return errors.New("unknown property identifier")
	}
	_, dupInt := p.Ints[id]
	_, dupStr := p.Strs[id]
	_, dupBin := p.Bins[id]
	if dupInt || dupStr || dupBin {
		return errDuplicate
	}
	var err error
	switch kind {
	case kindByte:
		var v byte
		v, err = r.byte()
		p.SetInt(id, uint32(v))
	case kindU16:
		var v uint16
		v, err = r.u16()
		p.SetInt(id, uint32(v))
	case kindU32:
		var v uint32
		v, err = r.u32()
		p.SetInt(id, v)
	case kindVarint:
		var v uint32
		v, err = r.varint()
		p.SubIDs = append(p.SubIDs, v)
	case kindString:
		var v string
		v, err = r.string()
		p.SetStr(id, v)
	case kindBinary:
		var v []byte
		v, err = r.binary()
		p.SetBin(id, v)
	case kindPair:
		var k, v string
		if k, err = r.string(); err == nil {
			v, err = r.string()
		}
		p.User = append(p.User, UserProperty{k, v})
	}
	return err
}
