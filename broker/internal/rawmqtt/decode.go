package rawmqtt

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ErrMalformed wraps every decoding error: the bytes are not a well-formed
// packet of the version they were read as.
var ErrMalformed = errors.New("malformed packet")

// Read reads one packet of protocol version v from r. A packet whose
// remaining length is over limit is refused without reading its body.
func Read(r *bufio.Reader, v byte, limit int) (Packet, error) {
	first, err := r.ReadByte()
	if err != nil {
		return Packet{}, err
	}
	var n uint32
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return Packet{}, fmt.Errorf("remaining length: %w", err)
		}
		n |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			break
		}
		if i == 3 {
			return Packet{}, fmt.Errorf("%w: remaining length over four bytes", ErrMalformed)
		}
	}
	if int(n) > limit {
		return Packet{}, fmt.Errorf("%w: remaining length %d over the limit %d", ErrMalformed, n, limit)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return Packet{}, fmt.Errorf("%s body: %w", TypeName(first>>4), err)
	}
	return decodeBody(first, body, v)
}

// Decode decodes one whole packet (fixed header and body) of protocol
// version v from b and says how many bytes it took.
func Decode(b []byte, v byte) (Packet, int, error) {
	if len(b) < 2 {
		return Packet{}, 0, fmt.Errorf("%w: short fixed header", ErrMalformed)
	}
	r := &reader{b: b[1:]}
	n := r.varint()
	if r.err != nil {
		return Packet{}, 0, fmt.Errorf("%w: remaining length: %w", ErrMalformed, r.err)
	}
	body := r.take(int(n))
	if r.err != nil {
		return Packet{}, 0, fmt.Errorf("%w: %s body: %w", ErrMalformed, TypeName(b[0]>>4), r.err)
	}
	p, err := decodeBody(b[0], body, v)
	return p, len(b) - len(r.b), err
}

func decodeBody(first byte, body []byte, v byte) (Packet, error) {
	p := Packet{Type: first >> 4}
	flags := first & 0x0f
	r := &reader{b: body}
	err := checkFlags(p.Type, flags)
	if err == nil {
		err = decodeVariable(&p, flags, r, v)
	}
	if err == nil && !r.done() && p.Type != PUBLISH {
		err = fmt.Errorf("%d bytes after the packet", len(r.b))
	}
	if err != nil {
		return Packet{}, fmt.Errorf("%w: %s: %w", ErrMalformed, TypeName(p.Type), err)
	}
	return p, nil
}

// checkFlags enforces the fixed header's reserved flags ([MQTT-2.2.2-1]).
func checkFlags(t, flags byte) error {
	switch t {
	case 0:
		return errors.New("reserved packet type 0")
	case PUBLISH:
		if flags&0x06 == 0x06 {
			return errors.New("QoS 3") // [MQTT-3.3.1-4]
		}
		return nil
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		if flags != 0x02 {
			return fmt.Errorf("fixed header flags %#x, want 0x2", flags)
		}
	default:
		if flags != 0 {
			return fmt.Errorf("fixed header flags %#x, want 0", flags)
		}
	}
	return nil
}

func decodeVariable(p *Packet, flags byte, r *reader, v byte) error {
	switch p.Type {
	case CONNECT:
		return decodeConnect(p, r)
	case CONNACK:
		ack := r.byte()
		if r.err == nil && ack&0xfe != 0 {
			return errors.New("reserved connect acknowledge flags") // [MQTT-3.2.2-1]
		}
		p.SessionPresent, p.Reason = ack == 1, r.byte()
		if v == V5 {
			p.Props = r.readProps()
		}
	case PUBLISH:
		return decodePublish(p, flags, r, v)
	case PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT, AUTH:
		if p.Type <= PUBCOMP {
			p.ID = r.u16()
		}
		// MQTT 5 may leave out the reason code, or only the properties.
		if v == V5 && !r.done() {
			if p.Reason = r.byte(); !r.done() {
				p.Props = r.readProps()
			}
		}
	case SUBSCRIBE, UNSUBSCRIBE:
		return decodeSubscribe(p, r, v)
	case SUBACK, UNSUBACK:
		if p.ID = r.u16(); v == V5 {
			p.Props = r.readProps()
		}
		p.Reasons, r.b = append([]byte(nil), r.b...), nil
	}
	return r.err
}

func decodePublish(p *Packet, flags byte, r *reader, v byte) error {
	p.Dup, p.QoS, p.Retain = flags&0x08 != 0, flags>>1&0x03, flags&0x01 != 0
	if p.Topic = r.string(); r.err != nil {
		return fmt.Errorf("topic: %w", r.err)
	}
	if p.QoS > 0 {
		if p.ID = r.u16(); r.err == nil && p.ID == 0 {
			return errors.New("packet identifier 0") // [MQTT-2.2.1-3]
		}
	}
	if v == V5 {
		p.Props = r.readProps()
	}
	p.Payload, r.b = append([]byte{}, r.b...), nil
	return r.err
}

func decodeConnect(p *Packet, r *reader) error {
	name, c := r.string(), &Connect{}
	if c.Version = r.byte(); r.err == nil && (name != "MQTT" || (c.Version != V311 && c.Version != V5)) {
		return fmt.Errorf("protocol %q level %d", name, c.Version)
	}
	flags := r.byte()
	if r.err == nil && (flags&0x01 != 0 || (flags&0x04 == 0 && flags&0x38 != 0) || flags>>3&0x03 == 3) {
		return fmt.Errorf("connect flags %#x", flags) // [MQTT-3.1.2-3] [MQTT-3.1.2-11] [MQTT-3.1.2-14]
	}
	c.Clean, c.KeepAlive = flags&0x02 != 0, r.u16()
	if c.Version == V5 {
		p.Props = r.readProps()
	}
	c.ClientID = r.string()
	if flags&0x04 != 0 {
		c.Will = &Will{QoS: flags >> 3 & 0x03, Retain: flags&0x20 != 0}
		if c.Version == V5 {
			c.Will.Props = r.readProps()
		}
		c.Will.Topic, c.Will.Payload = r.string(), r.binary()
	}
	if flags&0x80 != 0 {
		u := r.string()
		c.Username = &u
	}
	if flags&0x40 != 0 {
		c.Password = r.binary()
	}
	p.Connect = c
	return r.err
}

// decodeSubscribe decodes a SUBSCRIBE or an UNSUBSCRIBE: a packet
// identifier, MQTT 5 properties and at least one topic filter, with its
// options in a SUBSCRIBE.
func decodeSubscribe(p *Packet, r *reader, v byte) error {
	if p.ID = r.u16(); v == V5 {
		p.Props = r.readProps()
	}
	for r.err == nil && !r.done() {
		f := r.string()
		if p.Type == UNSUBSCRIBE {
			p.Filters = append(p.Filters, f)
			continue
		}
		opts := r.byte()
		if r.err == nil && (opts&0xc0 != 0 || opts&0x03 == 3 || opts>>4&0x03 == 3 || (v != V5 && opts&0xfc != 0)) {
			return fmt.Errorf("subscription options %#x", opts) // [MQTT-3.8.3-5] [MQTT-3-8.3-4]
		}
		p.Subs = append(p.Subs, Subscription{Filter: f, QoS: opts & 0x03, NoLocal: opts&0x04 != 0,
			RetainAsPublished: opts&0x08 != 0, RetainHandling: opts >> 4 & 0x03})
	}
	if r.err == nil && len(p.Subs)+len(p.Filters) == 0 {
		return errors.New("no topic filter") // [MQTT-3.8.3-3] [MQTT-3.10.3-2]
	}
	return r.err
}

// reader consumes a packet's bytes. Every read checks the length left and
// keeps the first failure in err, after which reads return zero values: a
// decoder reads field after field and looks at err where it matters.
type reader struct {
	b   []byte
	err error
}

var errShort = errors.New("packet ends early")

func (r *reader) done() bool { return len(r.b) == 0 }

func (r *reader) take(n int) []byte {
	if r.err == nil && (n < 0 || n > len(r.b)) {
		r.err = errShort
	}
	if r.err != nil {
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) binary() []byte { return append([]byte{}, r.take(int(r.u16()))...) }

// string reads a UTF-8 Encoded String; invalid UTF-8 or U+0000 is
// malformed ([MQTT-1.5.4-1] [MQTT-1.5.4-2]).
func (r *reader) string() string {
	switch b := r.binary(); {
	case r.err != nil:
	case !utf8.Valid(b):
		r.err = errors.New("string is not UTF-8")
	case bytes.IndexByte(b, 0) >= 0:
		r.err = errors.New("string holds U+0000")
	default:
		return string(b)
	}
	return ""
}

// varint reads a Variable Byte Integer of at most four bytes (1.5.5), the
// encoding encoding/binary calls a uvarint.
func (r *reader) varint() uint32 {
	v, n := binary.Uvarint(r.b[:min(4, len(r.b))])
	switch {
	case r.err != nil:
	case n > 0:
		r.b = r.b[n:]
		return uint32(v)
	case len(r.b) >= 4:
		r.err = errors.New("variable byte integer over four bytes")
	default:
		r.err = errShort
	}
	return 0
}
