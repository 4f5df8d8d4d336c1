package wire

import (
	"encoding/json"
	"math"
	"strconv"
)

// unmarshalEnvelope is json.Unmarshal(b, e) for a fresh e, with a fast path
// (no reflection, for every message a node gets) for what nodes write: a
// flat object of Envelope's exact keys, unescaped strings and plain
// integers. Anything else goes to encoding/json. b is valid UTF-8.
func unmarshalEnvelope(b []byte, e *Envelope) error {
	if fastEnvelope(b, e) {
		return nil
	}
	*e = Envelope{}
	return json.Unmarshal(b, e)
}

// envScanner walks JSON for fastEnvelope; ok turns false at what it does not handle.
type envScanner struct {
	b  []byte
	i  int
	ok bool
}

func (s *envScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte consumes c (after white space).
func (s *envScanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters.
func (s *envScanner) str() []byte {
	s.space()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		s.ok = false
		return nil
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j]
		case c == '\\' || c < 0x20:
			s.ok = false
			return nil
		}
	}
	s.ok = false
	return nil
}

// digits reads an unsigned JSON integer within the uint64 range.
func (s *envScanner) digits() uint64 {
	start := s.i
	var n uint64
	for ; s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9'; s.i++ {
		d := uint64(s.b[s.i] - '0')
		if n > (math.MaxUint64-d)/10 {
			s.ok = false
			return 0
		}
		n = n*10 + d
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		s.ok = false
	}
	return n
}

func (s *envScanner) uint64() uint64 {
	s.space()
	return s.digits()
}

func (s *envScanner) int64() int64 {
	s.space()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	n := s.digits()
	switch {
	case !neg && n <= math.MaxInt64:
		return int64(n)
	case neg && n <= 1<<63:
		return -int64(n) // for 1<<63 this wraps to MinInt64, as it should
	}
	s.ok = false
	return 0
}

// fastEnvelope fills e from a plain-shaped b; false leaves e unspecified.
func fastEnvelope(b []byte, e *Envelope) bool {
	*e = Envelope{}
	s := envScanner{b: b, ok: true}
	if !s.byte('{') {
		return false
	}
	if !s.byte('}') { // not the empty object: fields, then its end
		for {
			key := s.str()
			if !s.ok || !s.byte(':') || !s.field(key, e) {
				return false
			}
			if !s.byte(',') {
				break
			}
		}
		if !s.byte('}') {
			return false
		}
	}
	s.space()
	return s.i == len(b)
}

// field reads the value of key into e; false for a key it does not know.
func (s *envScanner) field(key []byte, e *Envelope) bool {
	switch string(key) {
	case "v":
		n := s.int64()
		if int64(int(n)) != n {
			return false
		}
		e.V = int(n)
	case "id":
		e.ID = string(s.str())
	case "kind":
		e.Kind = string(s.str())
	case "room":
		e.Room = string(s.str())
	case "to":
		e.To = string(s.str())
	case "from":
		e.From = string(s.str())
	case "boot":
		e.Boot = s.int64()
	case "seq":
		e.Seq = s.uint64()
	case "sent_ns":
		e.SentNS = s.int64()
	case "body":
		e.Body = string(s.str())
	case "pad":
		e.Pad = string(s.str())
	case "room_seq":
		e.RoomSeq = s.uint64()
	case "broker_ns":
		e.BrokerNS = s.int64()
	default:
		return false
	}
	return s.ok
}

// appendEnvelope appends e as encoding/json writes it, for every stored message.
func appendEnvelope(b []byte, e *Envelope) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = appendStringField(b, `,"id":`, e.ID, false)
	b = appendStringField(b, `,"kind":`, e.Kind, true)
	b = appendStringField(b, `,"room":`, e.Room, true)
	b = appendStringField(b, `,"to":`, e.To, true)
	b = appendStringField(b, `,"from":`, e.From, false)
	if e.Boot != 0 {
		b = strconv.AppendInt(append(b, `,"boot":`...), e.Boot, 10)
	}
	if e.Seq != 0 {
		b = strconv.AppendUint(append(b, `,"seq":`...), e.Seq, 10)
	}
	b = strconv.AppendInt(append(b, `,"sent_ns":`...), e.SentNS, 10)
	b = appendStringField(b, `,"body":`, e.Body, false)
	b = appendStringField(b, `,"pad":`, e.Pad, true)
	if e.RoomSeq != 0 {
		b = strconv.AppendUint(append(b, `,"room_seq":`...), e.RoomSeq, 10)
	}
	if e.BrokerNS != 0 {
		b = strconv.AppendInt(append(b, `,"broker_ns":`...), e.BrokerNS, 10)
	}
	return append(b, '}')
}

// appendStringField appends key and s, or nothing when omitEmpty and s is "".
func appendStringField(b []byte, key, s string, omitEmpty bool) []byte {
	if omitEmpty && s == "" {
		return b
	}
	return AppendJSONString(append(b, key...), s)
}
