package analysis

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
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
	// testdata/basic, worked out by hand (times in s, latencies in ms):
	//   a-1 lobby  1.0   a 1, b 2 (and a duplicate at b); c joined at 1.2
	//   b-1 lobby  1.5   a 4, b 1, c 5
	//   a-2 lobby  2.0   a 3, b 500 via sync; never reached c: lost
	//   a-3 DM→c   2.1   c -0.5 (clock skew: counts as 0)
	//   b-2 lobby  2.4   a 14 (after b-3: reordered), b 1; c left at 2.2
	//   b-3 lobby  2.41  a 3, b 1
	// plus a foreign line, a truncated line and an unknown event (3 bad
	// lines), and two fault windows.
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", s.Name, "t"},
		{"sent", s.Sent, int64(6)},
		{"expected", s.Expected, int64(13)},
		{"received", s.Received, int64(12)},
		{"lost", s.Lost, int64(1)},
		{"duplicates", s.Duplicates, int64(1)},
		{"reordered", s.Reordered, int64(1)},
		{"received_sync", s.ReceivedSync, int64(1)},
		{"received_live", s.ReceivedLive, int64(11)},
		{"unmatched", s.Unmatched, int64(0)},
		{"negative latencies", s.NegativeLatencies, int64(1)},
		// µs: 0 1000 1000 1000 1000 2000 3000 3000 4000 5000 14000 500000
		{"latency", s.LatencyMS, Latency{N: 12, Min: 0, Mean: 44.583, P50: 2, P90: 14, P95: 500, P99: 500, P999: 500, Max: 500}},
		{"live latency", s.LiveLatencyMS, Latency{N: 11, Min: 0, Mean: 3.182, P50: 2, P90: 5, P95: 14, P99: 14, P999: 14, Max: 14}},
		{"sync latency", s.SyncLatencyMS, Latency{N: 1, Min: 500, Mean: 500, P50: 500, P90: 500, P95: 500, P99: 500, P999: 500, Max: 500}},
		{"round trip", s.RoundTripMS, Latency{N: 5, Min: 1, Mean: 1.4, P50: 1, P90: 3, P95: 3, P99: 3, P999: 3, Max: 3}},
		{"ack", s.AckLatencyMS, Latency{N: 6, Min: 0.4, Mean: 0.65, P50: 0.6, P90: 0.9, P95: 0.9, P99: 0.9, P999: 0.9, Max: 0.9}},
		{"window", s.WindowS, 1.41},
		{"throughput", s.ThroughputMsgsPerS, 8.511},
		{"faults", len(s.Faults), 2},
		{"first fault", s.Faults[0], Fault{Name: "kill-broker", Target: "broker", StartNS: 1700000000, EndNS: 1900000000}},
		{"second fault", s.Faults[1], Fault{Name: "partition", Target: "c", StartNS: 2200000000, EndNS: 2300000000}},
		{"input lines", sum.Input.Lines, int64(33)},
		{"bad lines", sum.Input.BadLines, int64(3)},
		{"files", sum.Input.Files, 4},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %+v, want %+v", c.name, c.got, c.want)
		}
	}
	type fig struct{ expected, received, lost, dup, reordered, sync int64 }
	perNode := map[string]fig{}
	for _, r := range s.Receivers {
		perNode[r.Node] = fig{r.Expected, r.Received, r.Lost, r.Duplicates, r.Reordered, r.ReceivedSync}
	}
	want := map[string]fig{"a": {5, 5, 0, 0, 1, 0}, "b": {5, 5, 0, 1, 0, 1}, "c": {3, 2, 1, 0, 0, 0}}
	// Longest wait within the window 1.0-2.41 s, from each node's
	// subscription on: a receives at 1.001, 1.504, 2.003 (then 2.413,
	// after the window): 503 ms; b at 1.002 (1.003 is a duplicate), 1.501,
	// 2.401 (2.5 after the window): 900 ms; c joined at 1.2 and receives
	// at 1.505 and 2.0995: 594.5 ms.
	waits := map[string]float64{}
	for _, r := range s.Receivers {
		waits[r.Node] = r.LongestWaitMS
	}
	if w := map[string]float64{"a": 503, "b": 900, "c": 594.5}; !maps.Equal(waits, w) {
		t.Errorf("longest waits %v, want %v", waits, w)
	}
	if s.LongestWaitMS != 900 || s.LongestWaitNode != "b" {
		t.Errorf("scenario longest wait %v ms at %q, want 900 ms at b", s.LongestWaitMS, s.LongestWaitNode)
	}
	if len(perNode) != len(want) {
		t.Errorf("receivers %v, want %v", perNode, want)
	}
	for n, w := range want {
		if perNode[n] != w {
			t.Errorf("receiver %s expected/received/lost/dup/reordered/sync = %v, want %v", n, perNode[n], w)
		}
	}
	sent := map[string]int64{}
	for _, snd := range s.Senders {
		sent[snd.Node] = snd.Sent
	}
	if sent["a"] != 3 || sent["b"] != 3 || len(sent) != 2 {
		t.Errorf("senders %v, want a 3, b 3", sent)
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
	if err != nil || len(raw.Scenarios) != 1 || raw.Input["lines"] != 33.0 {
		t.Fatalf("summary.json unreadable or wrong: %v %+v", err, raw.Input)
	}
	for _, k := range []string{"name", "sent", "expected", "received", "lost", "duplicates", "reordered", "latency_ms",
		"ack_latency_ms", "throughput_msgs_per_s", "window_s", "receivers", "senders", "negative_latencies"} {
		if _, ok := raw.Scenarios[0][k]; !ok {
			t.Errorf("summary.json lacks scenarios[0].%s", k)
		}
	}
	rows := readCSV(t, filepath.Join(out, "messages.csv"))
	if len(rows) != 1+13 { // header + 13 delivery lines (the duplicate included)
		t.Errorf("messages.csv has %d rows, want 14", len(rows))
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
	// a-1 is sent at 1.0 s (and delivered twice to b), b-1 at 1.5 s, a-2 at
	// 2.0 s, a-3 at 2.1 s, b-2 and b-3 at 2.4 s (see TestKnownAnswers).
	tests := []struct {
		name                                  string
		warmup, cooldown                      time.Duration
		sent, expected, lost, received, dupes int64
	}{
		{"whole run", 0, 0, 6, 13, 1, 12, 1},
		{"warm-up leaves out a-1 and its duplicate", 400 * time.Millisecond, 0, 5, 11, 1, 10, 0},
		{"cool-down leaves out a-3, b-2 and b-3", 0, 400 * time.Millisecond, 3, 8, 1, 7, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := runOn(t, []string{"testdata/basic"}, Options{Warmup: tt.warmup, Cooldown: tt.cooldown, NoPlots: true}, "").Scenarios[0]
			got := [5]int64{s.Sent, s.Expected, s.Lost, s.Received, s.Duplicates}
			if want := [5]int64{tt.sent, tt.expected, tt.lost, tt.received, tt.dupes}; got != want {
				t.Fatalf("sent, expected, lost, received, duplicates = %v, want %v", got, want)
			}
		})
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
	if s.Expected != 13 || s.Received != 12 || s.Lost != 1 {
		t.Fatalf("from stdin: expected %d received %d lost %d, want 13 12 1", s.Expected, s.Received, s.Lost)
	}
}

// TestUnlabelledRun: logs of nodes started without -run form one scenario
// with a name, not an empty one (file names, tables).
func TestUnlabelledRun(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata/basic", "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.log")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(src), `"run":"t",`, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := runOn(t, []string{path}, Options{NoPlots: true}, "")
	if len(sum.Scenarios) != 1 || sum.Scenarios[0].Name != "unlabelled" {
		t.Fatalf("scenarios %+v, want one named unlabelled", sum.Scenarios)
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

// histOf is a histogram of the given µs values.
func histOf(vals ...int32) *hist {
	h := &hist{}
	for _, v := range vals {
		h.add(v)
	}
	return h
}

func TestCDFPoints(t *testing.T) {
	pts := cdfPoints(histOf(0, 1000, 2000, 4000), 100)
	want := []struct{ x, y float64 }{{minLatencyMS, 0.25}, {1, 0.5}, {2, 0.75}, {4, 1}}
	if len(pts) != len(want) {
		t.Fatalf("%d points, want %d", len(pts), len(want))
	}
	for i, w := range want {
		if pts[i][0] != w.x || pts[i][1] != w.y {
			t.Errorf("point %d = %v, want %v", i, pts[i], w)
		}
	}
	// Downsampled series still end at 1.
	many := make([]int32, 10001)
	for i := range many {
		many[i] = int32(i)
	}
	if p := cdfPoints(histOf(many...), 100); len(p) > 102 || p[len(p)-1][1] != 1 {
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

func BenchmarkAnalyse(b *testing.B) {
	dir := b.TempDir()
	const lines = 400_000
	if err := generate(context.Background(), dir, "bench", 3, lines, 0.001); err != nil {
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

// relabel copies the log files of src into a new directory with every run
// label "t" replaced by run, message ids unchanged.
func relabel(t *testing.T, src, run string) string {
	t.Helper()
	dir := t.TempDir()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(`"run":"t"`), []byte(`"run":"`+run+`"`))
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestScenariosWithTheSameIDs checks that message ids are matched within
// their run only: two scenarios whose ids repeat each other both count.
func TestScenariosWithTheSameIDs(t *testing.T) {
	genDir := func(run string) string {
		dir := t.TempDir()
		if err := generate(context.Background(), dir, run, 3, 4000, 0); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	tests := []struct {
		name   string
		inputs []string
		runs   []string
		sent   int64
		recv   int64
		lost   int64
	}{
		{"hand-made logs, same ids in two runs", []string{relabel(t, "testdata/basic", "u"), "testdata/basic"},
			[]string{"u", "t"}, 6, 12, 1},
		{"gen -run s1 and -run s2", []string{genDir("s1"), genDir("s2")}, []string{"s1", "s2"}, 1000, 3000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum := runOn(t, tt.inputs, Options{NoPlots: true}, "")
			if len(sum.Scenarios) != len(tt.runs) {
				t.Fatalf("%d scenarios, want %d", len(sum.Scenarios), len(tt.runs))
			}
			for i, s := range sum.Scenarios {
				if s.Name != tt.runs[i] || s.Sent != tt.sent || s.Received != tt.recv || s.Lost != tt.lost || s.Unmatched != 0 {
					t.Errorf("scenario %d: %s sent %d received %d lost %d unmatched %d, want %s %d %d %d 0", i, s.Name,
						s.Sent, s.Received, s.Lost, s.Unmatched, tt.runs[i], tt.sent, tt.recv, tt.lost)
				}
			}
		})
	}
}

// TestLongLines checks that a line over the 16 MiB limit is one bad line,
// not a fatal error, and that the lines after it still count.
func TestLongLines(t *testing.T) {
	basic, err := os.ReadFile("testdata/basic/a.log")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		extra     int // bytes of the inserted line
		wantBad   int64
		wantLines int64
	}{
		{"2 MiB line (longer than the read buffer)", 2 << 20, 1, 11},
		{"over the limit", maxLineBytes + 1, 1, 11},
		{"far over the limit", maxLineBytes + 3<<20, 1, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			lines := bytes.SplitAfter(basic, []byte("\n"))
			var b bytes.Buffer
			b.Write(bytes.Join(lines[:2], nil))
			b.Write(bytes.Repeat([]byte("x"), tt.extra)) // foreign text: a bad line either way
			b.WriteByte('\n')
			b.Write(bytes.Join(lines[2:], nil))
			if err := os.WriteFile(filepath.Join(dir, "a.log"), b.Bytes(), 0o666); err != nil {
				t.Fatal(err)
			}
			sum := runOn(t, []string{dir}, Options{NoPlots: true}, "")
			if sum.Input.BadLines != tt.wantBad || sum.Input.Lines != tt.wantLines {
				t.Fatalf("lines %d bad %d, want %d %d", sum.Input.Lines, sum.Input.BadLines, tt.wantLines, tt.wantBad)
			}
			if s := sum.Scenarios[0]; s.Sent != 3 || s.Received != 2 || s.Unmatched != 3 {
				// b-1, b-2 and b-3 have no "sent" line here: unmatched, whenever they were sent
				t.Fatalf("sent %d received %d unmatched %d after the long line, want 3 2 3", s.Sent, s.Received, s.Unmatched)
			}
		})
	}
}

func TestThroughputSeries(t *testing.T) {
	tests := []struct {
		name      string
		perSecond map[int64]int64
		want      []point
	}{
		{"none", map[int64]int64{}, nil},
		{"one second", map[int64]int64{7: 5}, []point{{0, 5}}},
		{"outage filled with zeros", map[int64]int64{10: 3, 11: 4, 14: 2},
			[]point{{0, 3}, {1, 4}, {2, 0}, {3, 0}, {4, 2}}},
		{"bogus far stamp stays sparse", map[int64]int64{0: 1, 1 << 30: 2}, []point{{0, 1}, {1 << 30, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, _ := throughputSeries(tt.perSecond); !slices.Equal(got, tt.want) {
				t.Fatalf("series %v, want %v", got, tt.want)
			}
		})
	}
	// The hand-made logs deliver 5 messages in second 1 and 7 in second 2.
	s := runOn(t, []string{"testdata/basic"}, Options{NoPlots: true}, "").Scenarios[0]
	if want := []point{{0, 5}, {1, 7}}; !slices.Equal(s.throughput, want) {
		t.Fatalf("basic throughput %v, want %v", s.throughput, want)
	}
}

func TestReportEmptyDistributions(t *testing.T) {
	full := Latency{N: 2, Min: 1, Mean: 1.5, P50: 1, P90: 2, P95: 2, P99: 2, P999: 2, Max: 2}
	tests := []struct {
		name    string
		s       ScenarioSummary
		want    []string
		mustNot []string
	}{
		{"no sync deliveries, no acks", ScenarioSummary{Name: "x", LatencyMS: full, LiveLatencyMS: full, RoundTripMS: full,
			Receivers: []ReceiverSummary{{Node: "a", Deliveries: Deliveries{Expected: 1, Lost: 1}}}},
			[]string{"| via room log (sync) | 0 | – | – | – | – | – | – | – | – |", "| publish → PUBACK | 0 | – |",
				"| a | 1 | 0 | 1 | 0 | 0 | 0 | – | – |", "| live | 2 | 1.000 | 1.500 |"},
			[]string{"| 0 | 0.000 |"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "report.md")
			if err := writeReport(path, Summary{Scenarios: []ScenarioSummary{tt.s, tt.s}}, reportPlots{}); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("report lacks %q:\n%s", w, b)
				}
			}
			for _, w := range tt.mustNot {
				if strings.Contains(string(b), w) {
					t.Errorf("report has %q", w)
				}
			}
		})
	}
}

func TestSpoolProgress(t *testing.T) {
	var dst, msgs bytes.Buffer
	sp := &spoolProgress{w: &dst, progress: &msgs, what: "standard input"} // zero last: reports at once
	if _, err := io.Copy(sp, strings.NewReader(strings.Repeat("x", 3_000_000))); err != nil {
		t.Fatal(err)
	}
	if dst.Len() != 3_000_000 || !strings.Contains(msgs.String(), "reading standard input") {
		t.Fatalf("copied %d bytes, progress %q", dst.Len(), msgs.String())
	}
}
