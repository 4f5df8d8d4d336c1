package jsonlog

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
)

// Formatter is a logrus.Formatter writing what a zero logrus.JSONFormatter
// writes (RFC 3339 times, HTML-safe escaping, keys clashing with time,
// msg, level or logrus_error prefixed with "fields."). Entries with a
// caller and values encoding/json refuses (NaN, ±Inf) go to a
// JSONFormatter. The one difference: logrus's logrus_error note on
// skipped func values is not written.
//
// With TimeNSKey set, every line also carries its time in Unix
// nanoseconds under that key (replacing a data field of that name),
// which a hook would pay a map write per line for.
type Formatter struct {
	TimeNSKey string

	fallback logrus.JSONFormatter
}

// field is one key of the line and its value.
type field struct {
	key string
	val any
}

// fieldsPool recycles the per-entry key list.
var fieldsPool = sync.Pool{New: func() any { s := make([]field, 0, 32); return &s }}

// The standard keys logrus.JSONFormatter adds to every line.
const (
	keyTime        = logrus.FieldKeyTime
	keyMsg         = logrus.FieldKeyMsg
	keyLevel       = logrus.FieldKeyLevel
	keyLogrusError = logrus.FieldKeyLogrusError
)

// standard values are placeholders for the entry's time, msg and level.
type standard int

const (
	stdTime standard = iota
	stdMsg
	stdLevel
	stdTimeNS
)

// Format renders e as one JSON line.
func (f *Formatter) Format(e *logrus.Entry) ([]byte, error) {
	if e.Caller != nil {
		return f.fallback.Format(e)
	}
	fp := fieldsPool.Get().(*[]field)
	defer func() {
		clear(*fp)
		*fp = (*fp)[:0]
		fieldsPool.Put(fp)
	}()
	fs := collect((*fp)[:0], e.Data, f.TimeNSKey)
	fs = append(fs, field{keyTime, stdTime}, field{keyMsg, stdMsg}, field{keyLevel, stdLevel})
	if f.TimeNSKey != "" {
		fs = append(fs, field{f.TimeNSKey, stdTimeNS})
	}
	slices.SortFunc(fs, func(a, b field) int { return strings.Compare(a.key, b.key) })
	*fp = fs

	buf := e.Buffer
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	b := buf.AvailableBuffer()
	b = append(b, '{')
	for i, fl := range fs {
		if i > 0 {
			b = append(b, ',')
		}
		b = wire.AppendJSONString(b, fl.key)
		b = append(b, ':')
		var ok bool
		if b, ok = appendValue(b, fl.val, e); !ok {
			return f.fallback.Format(e)
		}
	}
	b = append(b, '}', '\n')
	buf.Write(b)
	return buf.Bytes(), nil
}

// collect lists the entry's data fields under JSONFormatter's keys: a key
// clashing with a standard one moves to "fields."+key, replacing a field
// already called that, as JSONFormatter's map does. A field named skip is
// left out (the formatter writes its own).
func collect(fs []field, data logrus.Fields, skip string) []field {
	for k, v := range data {
		if k == skip && skip != "" {
			continue
		}
		switch k {
		case keyTime, keyMsg, keyLevel, keyLogrusError:
			k = "fields." + k
		case "fields." + keyTime, "fields." + keyMsg, "fields." + keyLevel, "fields." + keyLogrusError:
			if _, clash := data[strings.TrimPrefix(k, "fields.")]; clash {
				continue
			}
		}
		fs = append(fs, field{k, v})
	}
	return fs
}

// appendValue appends v as encoding/json would; false for a value it refuses.
func appendValue(b []byte, v any, e *logrus.Entry) (_ []byte, ok bool) {
	switch v := v.(type) {
	case standard:
		switch v {
		case stdTime:
			return appendTime(b, e.Time), true
		case stdMsg:
			return wire.AppendJSONString(b, e.Message), true
		case stdTimeNS:
			return strconv.AppendInt(b, e.Time.UnixNano(), 10), true
		default:
			return wire.AppendJSONString(b, e.Level.String()), true
		}
	case error:
		return wire.AppendJSONString(b, v.Error()), true
	case string:
		return wire.AppendJSONString(b, v), true
	case bool:
		return strconv.AppendBool(b, v), true
	case int, int8, int16, int32, int64:
		return strconv.AppendInt(b, reflect.ValueOf(v).Int(), 10), true
	case uint, uint8, uint16, uint32, uint64:
		return strconv.AppendUint(b, reflect.ValueOf(v).Uint(), 10), true
	case float64:
		return appendFloat(b, v, 64)
	case float32:
		return appendFloat(b, float64(v), 32)
	case nil:
		return append(b, "null"...), true
	default:
		j, err := json.Marshal(v)
		if err != nil {
			return b, false
		}
		return append(b, j...), true
	}
}

// appendTime appends t as an RFC 3339 JSON string.
func appendTime(b []byte, t time.Time) []byte {
	return append(t.AppendFormat(append(b, '"'), time.RFC3339), '"')
}

// appendFloat formats f like encoding/json: ES6 number formatting.
func appendFloat(b []byte, f float64, bits int) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) || bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// e-09 becomes e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}
