package jsonlog_test

import (
	"errors"
	"io"
	"math"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/internal/syncbuf"
	"github.com/distchat/distchat/chatnode/jsonlog"
)

// lines is an output that keeps every Write whole (jsonlog.ConcurrentWriter).
type lines struct{ syncbuf.Buffer }

func (l *lines) ConcurrentWrites() {}

func (l *lines) take() string { return l.Take() }

// logger is a node's logger: Formatter with ts_ns, base fields node and run.
func logger(out io.Writer, base logrus.Fields) *logrus.Entry {
	l := logrus.New()
	l.SetFormatter(&jsonlog.Formatter{TimeNSKey: "ts_ns"})
	l.SetOutput(out)
	return l.WithFields(base)
}

// sameLine writes one line through logrus and one through Fixed, both
// stamped t, and fails on any difference.
func sameLine(t *testing.T, base logrus.Fields, msg string, keys []string, vals []jsonlog.Value, boxed []any, at time.Time) {
	t.Helper()
	out := &lines{}
	e := logger(out, base)
	fx, err := jsonlog.NewFixed(e, logrus.InfoLevel, msg, keys...)
	if err != nil {
		t.Fatal(err)
	}
	fields := logrus.Fields{}
	for i, k := range keys {
		fields[k] = boxed[i]
	}
	e.WithFields(fields).WithTime(at).Info(msg)
	want := out.take()
	if err := fx.Line(at, vals...); err != nil {
		t.Fatal(err)
	}
	if got := out.take(); got != want {
		t.Fatalf("Fixed wrote\n%s\nlogrus\n%s", got, want)
	}
}

func TestFixedEqualsLogrus(t *testing.T) {
	at := time.Date(2026, 12, 1, 4, 35, 7, 123456789, time.FixedZone("X", 3600))
	received := []string{"event", "from", "id", "boot", "seq", "room_seq", "sent_ns", "recv_ns", "latency_us", "bytes", "duplicate", "via", "room"}
	for _, tc := range []struct {
		name  string
		base  logrus.Fields
		msg   string
		keys  []string
		vals  []jsonlog.Value
		boxed []any
	}{
		{"a received line", logrus.Fields{"node": "n0", "run": "x"}, "received", received,
			[]jsonlog.Value{jsonlog.String("received"), jsonlog.String("n3"), jsonlog.String("n3-dn948oi7tqgt-1f"),
				jsonlog.Int(1796099798378191421), jsonlog.Uint(31), jsonlog.Uint(307), jsonlog.Int(1796099798404460771),
				jsonlog.Int(1796099798405713501), jsonlog.Int(-1252), jsonlog.Int(301), jsonlog.Bool(true), jsonlog.String("live"), jsonlog.String("lobby")},
			[]any{"received", "n3", "n3-dn948oi7tqgt-1f", int64(1796099798378191421), uint64(31), uint64(307), int64(1796099798404460771),
				int64(1796099798405713501), int64(-1252), 301, true, "live", "lobby"}},
		{"escapes in keys, values and the message", logrus.Fields{"n<ode": "a\"b", "err": errors.New("x\ny")}, "m\u2028&",
			[]string{"a b", "a", "é", "max"},
			[]jsonlog.Value{jsonlog.String("<&>\x00"), jsonlog.Bool(false), jsonlog.String("\xff"), jsonlog.Uint(math.MaxUint64)},
			[]any{"<&>\x00", false, "\xff", uint64(math.MaxUint64)}},
		{"no base fields, no values", nil, "", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) { sameLine(t, tc.base, tc.msg, tc.keys, tc.vals, tc.boxed, at) })
	}
}

func FuzzFixedEqualsLogrus(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c\n", "<&>", "\u2028\u2029", "\xff\xfe", "é中文🙂", "\x00\x7f", "a b"} {
		f.Add(s, s, s, int64(len(s)), true)
	}
	f.Fuzz(func(t *testing.T, key, val, msg string, n int64, b bool) {
		switch key {
		case "time", "msg", "level", "ts_ns", "logrus_error", "n", "b", "node":
			return // NewFixed refuses a key twice
		}
		if len(key) > 7 && key[:7] == "fields." {
			return
		}
		sameLine(t, logrus.Fields{"node": val}, msg, []string{key, "n", "b"},
			[]jsonlog.Value{jsonlog.String(val), jsonlog.Int(n), jsonlog.Bool(b)}, []any{val, n, b}, time.Unix(0, n).UTC())
	})
}

// NewFixed refuses what it cannot write as logrus would: the caller logs
// through logrus then.
func TestNewFixedRefuses(t *testing.T) {
	hooked := logger(&lines{}, nil)
	hooked.Logger.AddHook(&countingHook{})
	text := logger(&lines{}, nil)
	text.Logger.SetFormatter(&logrus.TextFormatter{})
	for _, tc := range []struct {
		name  string
		entry *logrus.Entry
		keys  []string
	}{
		{"another formatter", text, nil},
		{"a hook on the level", hooked, nil},
		{"an output that may split lines", logger(io.Discard, nil), nil},
		{"a key twice", logger(&lines{}, logrus.Fields{"a": 1}), []string{"a"}},
		{"a standard key", logger(&lines{}, nil), []string{"msg"}},
		{"the time key", logger(&lines{}, nil), []string{"ts_ns"}},
		{"a key logrus renames", logger(&lines{}, nil), []string{"fields.msg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := jsonlog.NewFixed(tc.entry, logrus.InfoLevel, "m", tc.keys...); !errors.Is(err, jsonlog.ErrNotFixed) {
				t.Errorf("NewFixed: %v, want ErrNotFixed", err)
			}
		})
	}
}

// A line below the logger's level is not written; a line with the wrong
// number of values is an error, not a panic.
func TestFixedLevelAndValues(t *testing.T) {
	out := &lines{}
	e := logger(out, nil)
	fx, err := jsonlog.NewFixed(e, logrus.DebugLevel, "m", "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := fx.Line(time.Now(), jsonlog.Int(1)); err != nil || out.take() != "" {
		t.Errorf("a debug line at level info: %v, wrote something", err)
	}
	e.Logger.SetLevel(logrus.DebugLevel)
	if err := fx.Line(time.Now()); err == nil {
		t.Error("a line without its value: no error")
	}
	if err := fx.Line(time.Now(), jsonlog.Int(1)); err != nil || out.take() == "" {
		t.Errorf("a debug line at level debug: %v, wrote nothing", err)
	}
}

type countingHook struct{ n int }

func (h *countingHook) Levels() []logrus.Level   { return logrus.AllLevels }
func (h *countingHook) Fire(*logrus.Entry) error { h.n++; return nil }

func BenchmarkFixedReceived(b *testing.B) {
	out := &lines{}
	e := logger(out, logrus.Fields{"node": "n0", "run": "x"})
	fx, err := jsonlog.NewFixed(e, logrus.InfoLevel, "received", "event", "from", "id", "boot", "seq", "room_seq",
		"sent_ns", "recv_ns", "latency_us", "bytes", "duplicate", "via", "room")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		out.Take()
		if err := fx.Line(time.Now(), jsonlog.String("received"), jsonlog.String("n3"), jsonlog.String("n3-dn948oi7tqgt-1f"),
			jsonlog.Int(1796099798378191421), jsonlog.Uint(31), jsonlog.Uint(307), jsonlog.Int(1796099798404460771),
			jsonlog.Int(1796099798405713501), jsonlog.Int(1252), jsonlog.Int(301), jsonlog.Bool(false), jsonlog.String("live"),
			jsonlog.String("lobby")); err != nil {
			b.Fatal(err)
		}
	}
}
