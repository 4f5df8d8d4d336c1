package analysis

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runOn(t *testing.T, inputs []string, opt Options, stdin string) Summary {
	t.Helper()
	opt.Inputs = inputs
	if opt.Out == "" {
		opt.Out = t.TempDir()
	}
	sum, err := Run(context.Background(), opt, strings.NewReader(stdin))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return sum
}

// TestKnownAnswers checks every figure of a hand-made log set whose answers
// were worked out by hand (see testdata/basic and the comments below).
func TestKnownAnswers(t *testing.T) {
	out := t.TempDir()
	sum := runOn(t, []string{"testdata/basic"}, Options{Out: out}, "")
	if len(sum.Scenarios) != 1 {
		t.Fatalf("%d scenarios, want 1", len(sum.Scenarios))
	}
	s := sum.Scenarios[0]
	// a-1 is expected at a and b (c joined later); b-1 and a-2 at all three.
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", s.Name, "t"},
		{"sent", s.Sent, int64(3)},
		{"expected", s.Expected, int64(8)},
		{"received", s.Received, int64(7)},
		{"lost", s.Lost, int64(1)}, // a-2 never reached c
		{"duplicates", s.Duplicates, int64(1)},
		{"reordered", s.Reordered, int64(0)},
		{"received_sync", s.ReceivedSync, int64(1)},
		{"received_live", s.ReceivedLive, int64(6)},
		// latencies µs: 1000 1000 2000 3000 4000 5000 500000
		{"latency", s.LatencyMS, Latency{N: 7, Min: 1, Mean: 73.714, P50: 3, P90: 500, P95: 500, P99: 500, P999: 500, Max: 500}},
		{"sync latency", s.SyncLatencyMS.P50, 500.0},
		{"round trip", s.RoundTripMS, Latency{N: 3, Min: 1, Mean: 1.667, P50: 1, P90: 3, P95: 3, P99: 3, P999: 3, Max: 3}},
		{"ack", s.AckLatencyMS, Latency{N: 3, Min: 0.5, Mean: 0.7, P50: 0.7, P90: 0.9, P95: 0.9, P99: 0.9, P999: 0.9, Max: 0.9}},
		{"window", s.WindowS, 1.0},
		{"throughput", s.ThroughputMsgsPerS, 7.0},
		{"faults", len(s.Faults), 1},
		{"fault window", s.Faults[0].EndNS - s.Faults[0].StartNS, int64(200000000)},
		{"input lines", sum.Input.Lines, int64(21)},
		{"bad lines", sum.Input.BadLines, int64(2)},
		{"files", sum.Input.Files, 4},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %+v, want %+v", c.name, c.got, c.want)
		}
	}
	perNode := map[string][3]int64{}
	for _, r := range s.Receivers {
		perNode[r.Node] = [3]int64{r.Expected, r.Received, r.Lost}
	}
	want := map[string][3]int64{"a": {3, 3, 0}, "b": {3, 3, 0}, "c": {2, 1, 1}}
	for n, w := range want {
		if perNode[n] != w {
			t.Errorf("receiver %s expected/received/lost = %v, want %v", n, perNode[n], w)
		}
	}
	// Every output exists; summary.json has the documented keys.
	for _, f := range []string{"summary.json", "summary.csv", "messages.csv", "report.md", "latency_cdf_t.png",
		"latency_hist_t.png", "latency_time_t.png", "throughput_t.png", "loss_t.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("output %s missing or empty: %v", f, err)
		}
	}
	var raw struct {
		Scenarios []map[string]any `json:"scenarios"`
		Input     map[string]any   `json:"input"`
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err == nil {
		err = json.Unmarshal(b, &raw)
	}
	if err != nil || len(raw.Scenarios) != 1 || raw.Input["lines"] != 21.0 {
		t.Fatalf("summary.json unreadable or wrong: %v %+v", err, raw.Input)
	}
	for _, k := range []string{"name", "sent", "expected", "received", "lost", "duplicates", "reordered", "latency_ms",
		"ack_latency_ms", "throughput_msgs_per_s", "window_s", "receivers", "senders"} {
		if _, ok := raw.Scenarios[0][k]; !ok {
			t.Errorf("summary.json lacks scenarios[0].%s", k)
		}
	}
	rows := readCSV(t, filepath.Join(out, "messages.csv"))
	if len(rows) != 1+8 { // header + 8 delivery lines (the duplicate included)
		t.Errorf("messages.csv has %d rows, want 9", len(rows))
	}
	if rows := readCSV(t, filepath.Join(out, "summary.csv")); len(rows) != 1+3 {
		t.Errorf("summary.csv has %d rows, want 4", len(rows))
	}
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestWarmupTrimsTheWindow(t *testing.T) {
	// With 400 ms of warm-up, a-1 (sent at 1.0 s) is out: b-1 and a-2 remain.
	s := runOn(t, []string{"testdata/basic"}, Options{Warmup: 400e6, NoPlots: true}, "").Scenarios[0]
	if s.Sent != 2 || s.Expected != 6 || s.Lost != 1 || s.Received != 5 {
		t.Fatalf("sent %d expected %d lost %d received %d, want 2 6 1 5", s.Sent, s.Expected, s.Lost, s.Received)
	}
}

func TestStdinAndComposeLogs(t *testing.T) {
	var all bytes.Buffer
	for _, f := range []string{"a.log", "b.log", "c.log"} {
		b, err := os.ReadFile(filepath.Join("testdata/basic", f))
		if err != nil {
			t.Fatal(err)
		}
		// docker-compose logs prefixes and colours every line
		for _, line := range strings.SplitAfter(string(b), "\n") {
			if line != "" {
				all.WriteString("\x1b[36m" + f[:1] + "_1  |\x1b[0m " + strings.TrimPrefix(line, "b_1  | "))
			}
		}
	}
	s := runOn(t, []string{"-"}, Options{NoPlots: true}, all.String()).Scenarios[0]
	if s.Expected != 8 || s.Received != 7 || s.Lost != 1 {
		t.Fatalf("from stdin: expected %d received %d lost %d, want 8 7 1", s.Expected, s.Received, s.Lost)
	}
}

func TestBadInputIsOneClearError(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.log")
	foreign := filepath.Join(dir, "foreign.log")
	if err := os.WriteFile(empty, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(foreign, []byte("hello\nworld\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"missing", filepath.Join(dir, "nope.log"), "no such file"},
		{"empty", empty, "is empty"},
		{"foreign", foreign, "none of the 2 lines"},
		{"glob without match", filepath.Join(dir, "*.nothing"), "matches no file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr, stdout bytes.Buffer
			code := Main(context.Background(), []string{"-q", "-out", t.TempDir(), tt.input}, strings.NewReader(""), &stdout, &stderr)
			msg := stderr.String()
			if code == 0 || !strings.Contains(msg, tt.want) || strings.Count(msg, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q: want one line containing %q", code, msg, tt.want)
			}
		})
	}
}

func TestCDFPoints(t *testing.T) {
	pts := cdfPoints([]int32{0, 1000, 2000, 4000}, 100)
	want := []struct{ x, y float64 }{{minLatencyMS, 0.25}, {1, 0.5}, {2, 0.75}, {4, 1}}
	if len(pts) != len(want) {
		t.Fatalf("%d points, want %d", len(pts), len(want))
	}
	for i, w := range want {
		if pts[i].X != w.x || pts[i].Y != w.y {
			t.Errorf("point %d = %v, want %v", i, pts[i], w)
		}
	}
	// Downsampled series still end at 1.
	many := make([]int32, 10001)
	for i := range many {
		many[i] = int32(i)
	}
	if p := cdfPoints(many, 100); len(p) > 102 || p[len(p)-1].Y != 1 {
		t.Fatalf("downsampled CDF: %d points, last %v", len(p), p[len(p)-1])
	}
}

func TestParseRec(t *testing.T) {
	var r rec
	line := []byte(`{"after_seq":7,"client_id":"x","duplicate":true,"error":"a \"quoted\", text","id":"a-1","room_seq":9,"seq":3,"via":"sync","ts_ns":-5}`)
	if !parseRec(line, &r) {
		t.Fatal("a valid line was refused")
	}
	if string(r.id) != "a-1" || r.seq != 3 || !r.duplicate || string(r.via) != "sync" || r.tsNS != -5 {
		t.Fatalf("parsed %+v", r)
	}
	for _, bad := range []string{``, `{`, `not json`, `{"event":"sent"`, `{"event" "sent"}`, `{"event":"sen}`} {
		if parseRec([]byte(bad), &r) {
			t.Errorf("parseRec(%q) accepted a bad line", bad)
		}
	}
}

func FuzzParseRec(f *testing.F) {
	f.Add([]byte(`{"event":"received","id":"a","seq":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r rec
		parseRec(b, &r) // must not panic
	})
}

func BenchmarkAnalyse(b *testing.B) {
	dir := b.TempDir()
	const lines = 400_000
	if err := generate(dir, "bench", 3, lines, 0.001); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Run(context.Background(), Options{Inputs: []string{dir}, Out: b.TempDir(), NoPlots: true}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
}
