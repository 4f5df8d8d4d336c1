package jsonlog

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
)

// Fixed writes log lines of one shape (message, level and data keys) over
// a base entry's fields. Where logrus copies the field map twice, boxes
// every number and sorts the keys on each line, Fixed sorts and encodes
// the base once and appends each line's values in place; the bytes are
// Formatter's, written in one Write as logrus does.
type Fixed struct {
	logger *logrus.Logger
	level  logrus.Level
	parts  []part
	nvals  int // values a line takes

	mu  sync.Mutex // guards buf, the line being written; held across the output's Write, as logrus holds its lock (lock order: mu, then the output's own)
	buf []byte
}

// part is one key of the line: its literal bytes (`"key":` and a value
// every line shares), then the value its slot names.
type part struct {
	key  string
	lit  []byte
	slot int
}

const (
	slotNone   = -1 // the value is in lit
	slotTime   = -2 // the line's time, RFC 3339
	slotTimeNS = -3 // the line's time in Unix nanoseconds (Formatter.TimeNSKey)
)

// ConcurrentWriter marks an output that takes whole lines from several
// goroutines at once, each Write kept whole and in order (Writer).
type ConcurrentWriter interface {
	io.Writer
	ConcurrentWrites()
}

// ErrNotFixed is NewFixed's answer when lines must go through logrus.
var ErrNotFixed = errors.New("logger cannot take fixed lines")

// NewFixed prepares lines at level with message msg, the entry's fields
// and keys, whose values Line takes in this order. It returns ErrNotFixed
// for a logger it cannot stand in for (another formatter, hooks on the
// level, an output that is not a ConcurrentWriter): log through logrus then.
func NewFixed(entry *logrus.Entry, level logrus.Level, msg string, keys ...string) (*Fixed, error) {
	l := entry.Logger
	f, ok := l.Formatter.(*Formatter)
	if !ok {
		return nil, fmt.Errorf("%w: formatter %T", ErrNotFixed, l.Formatter)
	}
	if len(l.Hooks[level]) > 0 || l.ReportCaller {
		return nil, fmt.Errorf("%w: hooks or caller reports on %s lines", ErrNotFixed, level)
	}
	if _, ok := l.Out.(ConcurrentWriter); !ok {
		return nil, fmt.Errorf("%w: output %T", ErrNotFixed, l.Out)
	}
	parts := []part{
		{key: keyTime, slot: slotTime},
		{key: keyMsg, slot: slotNone, lit: wire.AppendJSONString(nil, msg)},
		{key: keyLevel, slot: slotNone, lit: wire.AppendJSONString(nil, level.String())},
	}
	if f.TimeNSKey != "" {
		parts = append(parts, part{key: f.TimeNSKey, slot: slotTimeNS})
	}
	for i, key := range keys {
		parts = append(parts, part{key: key, slot: i})
	}
	for key, v := range entry.Data {
		lit, ok := appendValue(nil, v, entry)
		if !ok {
			return nil, fmt.Errorf("%w: field %q", ErrNotFixed, key)
		}
		parts = append(parts, part{key: key, slot: slotNone, lit: lit})
	}
	slices.SortFunc(parts, func(a, b part) int { return strings.Compare(a.key, b.key) })
	for i, p := range parts {
		if i > 0 && parts[i-1].key == p.key || strings.HasPrefix(p.key, "fields.") || p.key == keyLogrusError {
			return nil, fmt.Errorf("%w: key %q twice, or one logrus renames", ErrNotFixed, p.key)
		}
		parts[i].lit = append(append(wire.AppendJSONString(nil, p.key), ':'), p.lit...)
	}
	return &Fixed{logger: l, level: level, parts: parts, nvals: len(keys)}, nil
}

// Value is a line's string, integer or boolean value, held without boxing.
type Value struct {
	kind valueKind
	s    string
	i    int64 // an Int, a Uint's bits, or a Bool's 0 or 1
}

type valueKind uint8

const (
	kindString valueKind = iota
	kindInt
	kindUint
	kindBool
)

// String is a string value.
func String(s string) Value { return Value{kind: kindString, s: s} }

// Int is a signed integer value.
func Int(i int64) Value { return Value{kind: kindInt, i: i} }

// Uint is an unsigned integer value.
func Uint(u uint64) Value { return Value{kind: kindUint, i: int64(u)} }

// Bool is a boolean value.
func Bool(b bool) Value {
	v := Value{kind: kindBool}
	if b {
		v.i = 1
	}
	return v
}

// Line writes one line stamped t with vals for NewFixed's keys, nothing
// when the logger's level leaves the line out.
func (f *Fixed) Line(t time.Time, vals ...Value) error {
	if len(vals) != f.nvals {
		return fmt.Errorf("log line of %d values for %d keys", len(vals), f.nvals)
	}
	if !f.logger.IsLevelEnabled(f.level) {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := append(f.buf[:0], '{')
	for i, p := range f.parts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p.lit...)
		switch p.slot {
		case slotNone:
		case slotTime:
			b = appendTime(b, t)
		case slotTimeNS:
			b = strconv.AppendInt(b, t.UnixNano(), 10)
		default:
			b = vals[p.slot].append(b)
		}
	}
	b = append(b, '}', '\n')
	f.buf = b
	if _, err := f.logger.Out.Write(b); err != nil {
		return fmt.Errorf("write log line: %w", err)
	}
	return nil
}

func (v Value) append(b []byte) []byte {
	switch v.kind {
	case kindInt:
		return strconv.AppendInt(b, v.i, 10)
	case kindUint:
		return strconv.AppendUint(b, uint64(v.i), 10)
	case kindBool:
		return strconv.AppendBool(b, v.i != 0)
	default:
		return wire.AppendJSONString(b, v.s)
	}
}
