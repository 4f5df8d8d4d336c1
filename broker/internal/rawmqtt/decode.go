package rawmqtt

import (
	"bufio"
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
	n, err := r.varint()
	if err != nil {
		return Packet{}, 0, fmt.Errorf("%w: remaining length: %w", ErrMalformed, err)
	}
	body, err := r.take(int(n))
	if err != nil {
		return Packet{}, 0, fmt.Errorf("%w: %s body: %w", ErrMalformed, TypeName(b[0]>>4), err)
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
	var err error
	switch p.Type {
	case CONNECT:
		return decodeConnect(p, r)
	case CONNACK:
		var ack byte
		if ack, err = r.byte(); err != nil {
			return err
		}
		if ack&0xfe != 0 {
			return errors.New("reserved connect acknowledge flags") // [MQTT-3.2.2-1]
		}
		p.SessionPresent = ack == 1
		if p.Reason, err = r.byte(); err == nil && v == V5 {
			p.Props, err = r.readProps()
		}
	case PUBLISH:
		return decodePublish(p, flags, r, v)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		if p.ID, err = r.u16(); err != nil || v != V5 || r.done() {
			return err
		}
		if p.Reason, err = r.byte(); err == nil && !r.done() {
			p.Props, err = r.readProps()
		}
	case SUBSCRIBE:
		return decodeSubscribe(p, r, v)
	case SUBACK, UNSUBACK:
		if p.ID, err = r.u16(); err == nil && v == V5 {
			p.Props, err = r.readProps()
		}
		if err == nil {
			p.Reasons = append([]byte(nil), r.b...)
			r.b = nil
		}
	case UNSUBSCRIBE:
		return decodeUnsubscribe(p, r, v)
	case PINGREQ, PINGRESP:
	case DISCONNECT, AUTH:
		if v == V5 && !r.done() {
			if p.Reason, err = r.byte(); err == nil && !r.done() {
				p.Props, err = r.readProps()
			}
		}
	}
	return err
}

func decodePublish(p *Packet, flags byte, r *reader, v byte) error {
	p.Dup, p.QoS, p.Retain = flags&0x08 != 0, flags>>1&0x03, flags&0x01 != 0
	var err error
	if p.Topic, err = r.string(); err != nil {
		return fmt.Errorf("topic: %w", err)
	}
	if p.QoS > 0 {
		if p.ID, err = r.u16(); err != nil {
			return err
		}
		if p.ID == 0 {
			return errors.New("packet identifier 0") // [MQTT-2.2.1-3]
		}
	}
	if v == V5 {
		if p.Props, err = r.readProps(); err != nil {
			return err
		}
	}
	p.Payload = append([]byte{}, r.b...)
	r.b = nil
	return nil
}

func decodeConnect(p *Packet, r *reader) error {
	name, err := r.string()
	if err != nil {
		return err
	}
	c := &Connect{}
	if c.Version, err = r.byte(); err != nil {
		return err
	}
	if name != "MQTT" || (c.Version != V311 && c.Version != V5) {
		return fmt.Errorf("protocol %q level %d", name, c.Version)
	}
	flags, err := r.byte()
	if err != nil {
		return err
	}
	if flags&0x01 != 0 || (flags&0x04 == 0 && flags&0x38 != 0) || flags>>3&0x03 == 3 {
		return fmt.Errorf("connect flags %#x", flags) // [MQTT-3.1.2-3] [MQTT-3.1.2-11] [MQTT-3.1.2-14]
	}
	c.Clean = flags&0x02 != 0
	if c.KeepAlive, err = r.u16(); err != nil {
		return err
	}
	if c.Version == V5 {
		if p.Props, err = r.readProps(); err != nil {
			return err
		}
	}
	if c.ClientID, err = r.string(); err != nil {
		return err
	}
	if flags&0x04 != 0 {
		w := &Will{QoS: flags >> 3 & 0x03, Retain: flags&0x20 != 0}
		if c.Version == V5 {
			if w.Props, err = r.readProps(); err != nil {
				return err
			}
		}
		if w.Topic, err = r.string(); err != nil {
			return err
		}
		if w.Payload, err = r.binary(); err != nil {
			return err
		}
		c.Will = w
	}
	if flags&0x80 != 0 {
		u, err := r.string()
		if err != nil {
			return err
		}
		c.Username = &u
	}
	if flags&0x40 != 0 {
		if c.Password, err = r.binary(); err != nil {
			return err
		}
	}
	p.Connect = c
	return nil
}

func decodeSubscribe(p *Packet, r *reader, v byte) error {
	err := readIDAndProps(p, r, v)
	if err != nil {
		return err
	}
	for !r.done() {
		var s Subscription
		if s.Filter, err = r.string(); err != nil {
			return err
		}
		opts, err := r.byte()
		if err != nil {
			return err
		}
		if opts&0xc0 != 0 || opts&0x03 == 3 || opts>>4&0x03 == 3 || (v != V5 && opts&0xfc != 0) {
			return fmt.Errorf("subscription options %#x", opts) // [MQTT-3.8.3-5] [MQTT-3-8.3-4]
		}
		s.QoS, s.NoLocal, s.RetainAsPublished, s.RetainHandling = opts&0x03, opts&0x04 != 0, opts&0x08 != 0, opts>>4&0x03
		p.Subs = append(p.Subs, s)
	}
	if len(p.Subs) == 0 {
		return errors.New("no topic filter") // [MQTT-3.8.3-3]
	}
	return nil
}

func decodeUnsubscribe(p *Packet, r *reader, v byte) error {
	if err := readIDAndProps(p, r, v); err != nil {
		return err
	}
	for !r.done() {
		f, err := r.string()
		if err != nil {
			return err
		}
		p.Filters = append(p.Filters, f)
	}
	if len(p.Filters) == 0 {
		return errors.New("no topic filter") // [MQTT-3.10.3-2]
	}
	return nil
}

// reader consumes a packet's bytes; every read checks the length left.
type reader struct{ b []byte }

var errShort = errors.New("packet ends early")

func (r *reader) done() bool { return len(r.b) == 0 }

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b) {
		return nil, errShort
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out, nil
}

func (r *reader) sub(n int) (*reader, error) {
	b, err := r.take(n)
	return &reader{b: b}, err
}

func (r *reader) byte() (byte, error) {
	b, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (r *reader) u16() (uint16, error) {
	b, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return uint16(b[0])<<8 | uint16(b[1]), nil
}

func (r *reader) u32() (uint32, error) {
	b, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

func (r *reader) binary() ([]byte, error) {
	n, err := r.u16()
	if err != nil {
		return nil, err
	}
	b, err := r.take(int(n))
	return append([]byte{}, b...), err
}

// string reads a UTF-8 Encoded String; invalid UTF-8 or U+0000 is
// malformed ([MQTT-1.5.4-1] [MQTT-1.5.4-2]).
func (r *reader) string() (string, error) {
	b, err := r.binary()
	if err != nil {
		return "", err
	}
	if !utf8.Valid(b) {
		return "", errors.New("string is not UTF-8")
	}
	for _, c := range b {
		if c == 0 {
			return "", errors.New("string holds U+0000")
		}
	}
	return string(b), nil
}

// varint reads a Variable Byte Integer of at most four bytes (1.5.5).
func (r *reader) varint() (uint32, error) {
	var v uint32
	for i := 0; i < 4; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("variable byte integer over four bytes")
}

// readIDAndProps reads the packet identifier and, in MQTT 5, the
// properties that open a SUBSCRIBE or UNSUBSCRIBE.
func readIDAndProps(p *Packet, r *reader, v byte) error {
	var err error
	if p.ID, err = r.u16(); err != nil {
		return err
	}
	if v == V5 {
		p.Props, err = r.readProps()
	}
	return err
}
