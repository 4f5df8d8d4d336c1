package jsonlog

import (
	"bytes"
	"errors"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// entry builds a logrus entry as logrus hands it to a formatter.
func entry(level logrus.Level, msg string, data logrus.Fields) *logrus.Entry {
	e := logrus.NewEntry(logrus.New())
	e.Data = data
	e.Time = time.Date(2026, 12, 1, 4, 35, 7, 123456789, time.FixedZone("X", 3600))
	e.Level = level
	e.Message = msg
	return e
}

// receivedFields are the fields of a chat node's "received" line.
func receivedFields() logrus.Fields {
	return logrus.Fields{
		"event": "received", "from": "n3", "id": "n3-dn948oi7tqgt-1f", "boot": int64(1796099798378191421),
		"seq": uint64(31), "room_seq": uint64(307), "sent_ns": int64(1796099798404460771), "recv_ns": int64(1796099798405713501),
		"latency_us": int64(1252), "bytes": 301, "duplicate": false, "via": "live", "room": "lobby",
		"node": "n0", "run": "x", "ts_ns": int64(1796099798406001695),
	}
}

// same formats e with JSONFormatter and Formatter and fails on any
// difference.
func same(t *testing.T, e *logrus.Entry) {
	t.Helper()
	want, wantErr := (&logrus.JSONFormatter{}).Format(e)
	got, gotErr := (&Formatter{}).Format(e)
	if (wantErr == nil) != (gotErr == nil) {
		t.Fatalf("error %v, JSONFormatter's %v", gotErr, wantErr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("line\n%s\nJSONFormatter's\n%s", got, want)
	}
}

type text string

type point struct {
	X, Y int
}

func TestFormatterEqualsJSONFormatter(t *testing.T) {
	for _, tt := range []struct {
		name  string
		level logrus.Level
		msg   string
		data  logrus.Fields
	}{
		{"received line", logrus.InfoLevel, "received", receivedFields()},
		{"no fields", logrus.WarnLevel, "hello", nil},
		{"every scalar type", logrus.DebugLevel, "m", logrus.Fields{"i": -7, "i8": int8(-8), "i16": int16(16), "i32": int32(-32),
			"i64": int64(math.MinInt64), "u": uint(7), "u8": uint8(8), "u16": uint16(16), "u32": uint32(32),
			"u64": uint64(math.MaxUint64), "t": true, "f": false, "nil": nil}},
		{"floats", logrus.InfoLevel, "f", logrus.Fields{"a": 100.0, "b": 0.1, "c": 1e-7, "d": 1e21, "e": 123456789.125,
			"f": float32(0.1), "g": float32(1e-7), "h": math.Copysign(0, -1), "i": 5e-324, "j": math.MaxFloat64}},
		{"error value", logrus.ErrorLevel, "boom", logrus.Fields{"error": errors.New(`bad "thing" <x>`)}},
		{"clashing keys", logrus.InfoLevel, "m", logrus.Fields{"time": 1, "msg": "x", "level": 3, "logrus_error": "e"}},
		{"clash over a prefixed key", logrus.InfoLevel, "m", logrus.Fields{"msg": "mine", "fields.msg": "theirs", "fields.level": 2}},
		{"escapes", logrus.InfoLevel, "a\"b\\c\n\r\t\b\f\x00\x1f<>&\u2028\u2029\x7f é \xff\xfe end",
			logrus.Fields{"k\"<": "v\x01\u2028", "ünï": "ok"}},
		{"other types through encoding/json", logrus.InfoLevel, "m", logrus.Fields{"rooms": []string{"a", "<b>"},
			"dur": 3 * time.Second, "named": text("t<"), "struct": point{1, 2}, "map": map[string]int{"z": 1, "a": 2},
			"at": time.Unix(1, 5).UTC()}},
		{"panic level", logrus.PanicLevel, "", logrus.Fields{"x": ""}},
	} {
		t.Run(tt.name, func(t *testing.T) { same(t, entry(tt.level, tt.msg, tt.data)) })
	}
}

// TestFormatterRefusesLikeJSONFormatter: values encoding/json refuses fail
// the same way (logrus then reports the line as not formatted).
func TestFormatterRefusesLikeJSONFormatter(t *testing.T) {
	for _, v := range []any{math.NaN(), math.Inf(1), float32(math.Inf(-1)), func() {}, make(chan int)} {
		e := entry(logrus.InfoLevel, "m", logrus.Fields{"v": v})
		if _, err := (&Formatter{}).Format(e); err == nil {
			t.Errorf("%T %v: no error", v, v)
		}
	}
}

// TestFormatterUsesEntryBuffer: the line lands in logrus's pooled buffer.
func TestFormatterUsesEntryBuffer(t *testing.T) {
	e := entry(logrus.InfoLevel, "received", receivedFields())
	e.Buffer = &bytes.Buffer{}
	got, err := (&Formatter{}).Format(e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, e.Buffer.Bytes()) {
		t.Errorf("returned %q, buffer holds %q", got, e.Buffer.Bytes())
	}
}

// TestFormatterCaller: an entry with a caller comes out as JSONFormatter's.
func TestFormatterCaller(t *testing.T) {
	e := entry(logrus.InfoLevel, "m", logrus.Fields{"func": "mine"})
	e.Caller = &runtime.Frame{Function: "main.f", File: "/x/main.go", Line: 3}
	same(t, e)
}

func FuzzFormatterEqualsJSONFormatter(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c\n", "<&>", "\u2028\u2029", "\xff\xfe", "é中文🙂", "\x00\x7f"} {
		f.Add(s, s, s, int64(len(s)), float64(len(s))/3)
	}
	f.Fuzz(func(t *testing.T, key, val, msg string, n int64, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			x = 0
		}
		same(t, entry(logrus.InfoLevel, msg, logrus.Fields{key: val, "n": n, "x": x, "s": val + key}))
	})
}

func BenchmarkFormatReceived(b *testing.B) {
	for _, tt := range []struct {
		name string
		f    logrus.Formatter
	}{{"jsonlog", &Formatter{}}, {"logrus.JSONFormatter", &logrus.JSONFormatter{}}} {
		b.Run(tt.name, func(b *testing.B) {
			e := entry(logrus.InfoLevel, "received", receivedFields())
			e.Buffer = &bytes.Buffer{}
			b.ReportAllocs()
			for b.Loop() {
				e.Buffer.Reset()
				if _, err := tt.f.Format(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
