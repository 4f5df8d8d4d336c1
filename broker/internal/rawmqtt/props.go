package rawmqtt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
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

// propKind is how a property's value is encoded; a number's kind is its
// width in bytes.
type propKind int

const (
	kindByte   propKind = 1
	kindU16    propKind = 2
	kindU32    propKind = 4
	kindVarint propKind = iota + 5
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
func (p *Props) SetInt(id byte, v uint32) { set(&p.Ints, id, v) }

// SetStr sets the string property id.
func (p *Props) SetStr(id byte, v string) { set(&p.Strs, id, v) }

// SetBin sets the binary property id.
func (p *Props) SetBin(id byte, v []byte) { set(&p.Bins, id, v) }

func has[V any](m map[byte]V, id byte) bool {
	_, ok := m[id]
	return ok
}

// set stores v under id in *m, making the map on first use, so the zero
// Props stays usable.
func set[V any](m *map[byte]V, id byte, v V) {
	if *m == nil {
		*m = map[byte]V{}
	}
	(*m)[id] = v
}

// appendProps appends the property length and the properties, in
// identifier order (repeated ones in their order).
func appendProps(b []byte, p Props) ([]byte, error) {
	var body []byte
	ids := slices.Concat(slices.Collect(maps.Keys(p.Ints)), slices.Collect(maps.Keys(p.Strs)), slices.Collect(maps.Keys(p.Bins)))
	slices.Sort(ids)
	for _, id := range ids {
		var err error
		if body, err = appendProp(body, id, p); err != nil {
			return nil, err
		}
	}
	for _, s := range p.SubIDs {
		body = binary.AppendUvarint(append(body, PropSubscriptionID), uint64(s))
	}
	for _, u := range p.User {
		body = appendString(appendString(append(body, PropUser), u.Key), u.Value)
	}
	return append(binary.AppendUvarint(b, uint64(len(body))), body...), nil
}

// appendProp appends the single-valued property id from p.
func appendProp(body []byte, id byte, p Props) ([]byte, error) {
	body = append(body, id)
	switch kind := propKinds[id]; kind {
	case kindByte, kindU16, kindU32:
		for i := int(kind) - 1; i >= 0; i-- {
			body = append(body, byte(p.Ints[id]>>(8*i)))
		}
		return body, nil
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
func (r *reader) readProps() (p Props) {
	if r.err != nil {
		return p
	}
	if n := r.varint(); r.err != nil {
		r.err = fmt.Errorf("property length: %w", r.err)
	} else if sub := (&reader{b: r.take(int(n))}); r.err != nil {
		r.err = fmt.Errorf("properties: %w", r.err)
	} else {
		for r.err == nil && !sub.done() {
			id := sub.byte()
			if sub.readProp(&p, id); sub.err != nil {
				r.err = fmt.Errorf("property %#x: %w", id, sub.err)
			}
		}
	}
	return p
}

func (r *reader) readProp(p *Props, id byte) {
	switch kind, ok := propKinds[id]; {
	case !ok:
		r.err = errors.New("unknown property identifier")
	case has(p.Ints, id) || has(p.Strs, id) || has(p.Bins, id):
		r.err = errDuplicate
	case kind <= kindU32:
		var v uint32
		for _, c := range r.take(int(kind)) {
			v = v<<8 | uint32(c)
		}
		p.SetInt(id, v)
	case kind == kindVarint:
		p.SubIDs = append(p.SubIDs, r.varint())
	case kind == kindString:
		p.SetStr(id, r.string())
	case kind == kindBinary:
		p.SetBin(id, r.binary())
	case kind == kindPair:
		p.User = append(p.User, UserProperty{r.string(), r.string()})
	}
}
