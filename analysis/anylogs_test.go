package analysis

import (
	"context"
	"encoding/json"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logLine is one node log line as chat nodes write it.
func logLine(fields map[string]any) string {
	fields["level"], fields["msg"], fields["time"] = "info", fields["event"], "x"
	b, err := json.Marshal(fields)
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

// writeLogs writes each node's lines into dir/<node>.log.
func writeLogs(t *testing.T, dir string, logs map[string][]map[string]any) {
	t.Helper()
	for node, lines := range logs {
		var b strings.Builder
		for _, l := range lines {
			l["node"] = node
			b.WriteString(logLine(l))
		}
		if err := os.WriteFile(filepath.Join(dir, node+".log"), []byte(b.String()), 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

func subscribed(ts int64) map[string]any {
	return map[string]any{"event": "subscribed", "room": "general", "ts_ns": ts}
}

func sent(id string, ts int64) map[string]any {
	return map[string]any{"event": "sent", "room": "general", "id": id, "seq": 1, "sent_ns": ts, "ts_ns": ts, "ack_us": 300}
}

func received(id, from string, sentNS, recvNS int64) map[string]any {
	return map[string]any{"event": "received", "room": "general", "id": id, "from": from, "seq": 1, "sent_ns": sentNS,
		"recv_ns": recvNS, "ts_ns": recvNS, "via": "live", "bytes": 200, "boot": 1}
}

// TestAnyLogs: the analysis, plots on, on logs unlike an evaluation run's
// (interactive nodes without -run, one node, one message, no receipts)
// exits 0 with a summary and the plots of each scenario, never a panic.
// The first case is the logs of three interactive chatnode processes piped
// into room general without -run, whose plotting once dereferenced a nil
// scenario.
func TestAnyLogs(t *testing.T) {
	const s = int64(1_800_000_000_000_000_000)
	tests := []struct {
		name      string
		inputs    func(t *testing.T) []string
		scenarios []string // with plots, named by these file names
		received  int64    // of the first scenario
	}{
		{"three interactive nodes without -run", func(*testing.T) []string { return []string{"testdata/interactive"} },
			[]string{"unlabelled"}, 16},
		{"a single interactive node", func(*testing.T) []string { return []string{"testdata/interactive/alice.log"} },
			[]string{"unlabelled"}, 2},
		{"unlabelled and labelled runs together", func(*testing.T) []string {
			return []string{"testdata/interactive", "testdata/basic"}
		}, []string{"unlabelled", "t"}, 16},
		{"one message", func(t *testing.T) []string {
			dir := t.TempDir()
			writeLogs(t, dir, map[string][]map[string]any{"a": {subscribed(s), sent("a-1", s+1e6), received("a-1", "a", s+1e6, s+3e6)}})
			return []string{dir}
		}, []string{"unlabelled"}, 1},
		{"a node with no receipts", func(t *testing.T) []string {
			dir := t.TempDir()
			writeLogs(t, dir, map[string][]map[string]any{
				"a": {subscribed(s), sent("a-1", s+1e6), received("a-1", "a", s+1e6, s+2e6), sent("a-2", s+2e9)},
				"b": {subscribed(s), map[string]any{"event": "presence", "user": "a", "ts_ns": s + 3e9}},
			})
			return []string{dir}
		}, []string{"unlabelled"}, 1},
		{"a run label that is no file name", func(t *testing.T) []string {
			dir := t.TempDir()
			lines := []map[string]any{subscribed(s), sent("a-1", s+1e6), received("a-1", "a", s+1e6, s+3e6)}
			for _, l := range lines {
				l["run"] = "../my test/1"
			}
			writeLogs(t, dir, map[string][]map[string]any{"a": lines})
			return []string{dir}
		}, []string{".._my_test_1"}, 1},
		{"nothing received at all", func(t *testing.T) []string {
			dir := t.TempDir()
			writeLogs(t, dir, map[string][]map[string]any{"a": {subscribed(s), sent("a-1", s+1e6)}})
			return []string{dir}
		}, []string{"unlabelled"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := t.TempDir()
			var stdout, stderr strings.Builder
			args := append([]string{"-q", "-out", out}, tt.inputs(t)...)
			if code := Main(context.Background(), args, strings.NewReader(""), &stdout, &stderr); code != exitOK {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
			}
			var sum Summary
			b, err := os.ReadFile(filepath.Join(out, "summary.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &sum); err != nil {
				t.Fatal(err)
			}
			if len(sum.Scenarios) != len(tt.scenarios) || sum.Scenarios[0].Received != tt.received {
				t.Fatalf("summary %s, want scenarios %v and %d received in the first", b, tt.scenarios, tt.received)
			}
			for _, name := range tt.scenarios {
				for _, k := range scenarioPlotKinds {
					if _, err := os.Stat(filepath.Join(out, k.prefix+name+".png")); err != nil {
						t.Errorf("plot: %v", err)
					}
				}
			}
			if len(tt.scenarios) > 1 {
				if _, err := os.Stat(filepath.Join(out, "compare_cdf.png")); err != nil {
					t.Errorf("comparison plot: %v", err)
				}
			}
		})
	}
}

// TestSeriesStylesDistinct: the first twelve series have twelve different
// colours, and (colour, dashes) stays unique well past that.
func TestSeriesStylesDistinct(t *testing.T) {
	colours := map[color.Color]int{}
	styles := map[string]int{}
	for i := 0; i < 4*len(palette); i++ {
		st := seriesStyle(i)
		if i < len(palette) {
			if j, dup := colours[st.Color]; dup {
				t.Errorf("series %d and %d share colour %v", j, i, st.Color)
			}
			colours[st.Color] = i
		}
		key := fmt.Sprint(st.Color, st.Dashes)
		if j, dup := styles[key]; dup {
			t.Errorf("series %d and %d share colour and dashes %s", j, i, key)
		}
		styles[key] = i
	}
	if len(palette) < 12 {
		t.Fatalf("palette has %d colours, want at least 12", len(palette))
	}
}

// TestComparePlotColoursDistinct renders the CDF comparison of twelve
// scenarios: each line takes its scenario's series style, so the twelve
// colours are pairwise distinct, and every one of them is in the PNG.
func TestComparePlotColoursDistinct(t *testing.T) {
	var ss []ScenarioSummary
	for i := range 12 {
		ss = append(ss, ScenarioSummary{Name: fmt.Sprintf("s%d", i), all: histOf(int32(100*(i+1)), int32(1000*(i+1)), int32(5000*(i+1)))})
	}
	d := comparePlotData(ss)
	lines, err := cdfLines(d.CDFs)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(ss) {
		t.Fatalf("%d lines, want %d", len(lines), len(ss))
	}
	seen := map[color.Color]int{}
	for i, l := range lines {
		if l.Color != seriesStyle(i).Color {
			t.Errorf("line %d has colour %v, want its series colour %v", i, l.Color, seriesStyle(i).Color)
		}
		if j, dup := seen[l.Color]; dup {
			t.Errorf("lines %d and %d share colour %v", j, i, l.Color)
		}
		seen[l.Color] = i
	}
	dir := t.TempDir()
	names, err := savePlots(context.Background(), dir, compareKinds, " by scenario", "", d)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, names[0]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	count := map[color.RGBA]int{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			count[color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)]++
		}
	}
	for i, c := range palette {
		if n := count[c.(color.RGBA)]; n < 10 {
			t.Errorf("colour %d %v: %d pixels in %s, want its line and legend entry", i, c, n, names[0])
		}
	}
}

// TestComparisonGroups: the groups in the drill logs' scenario lines decide
// the comparisons: one plot set per group with two or more scenarios, none
// of all the scenarios together, and the groups in summary.json.
func TestComparisonGroups(t *testing.T) {
	dir := t.TempDir()
	copyFile := func(src, dst string) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"a.log", "b.log", "c.log", "drill.log"} {
		copyFile(filepath.Join("testdata/compare", f), f)
	}
	for _, f := range []string{"n0.log", "n1.log", "n2.log"} {
		copyFile(filepath.Join("testdata/compare/u", f), "u-"+f)
	}
	copyFile("testdata/interactive/alice.log", "alone.log") // unlabelled, no group
	scenarioLine := func(run, groups string) string {
		return logLine(map[string]any{"event": "scenario", "node": "drill", "run": run, "group": groups, "ts_ns": 1})
	}
	lines := scenarioLine("t", "g,h") + scenarioLine("u", "g") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "groups.log"), []byte(lines), 0o666); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	sum := runOn(t, []string{dir}, Options{Out: out}, "")
	groups := map[string]string{}
	for _, s := range sum.Scenarios {
		groups[s.Name] = strings.Join(s.Groups, ",")
	}
	if groups["t"] != "g,h" || groups["u"] != "g" || groups["unlabelled"] != "" || sum.Input.BadLines != 3+1 {
		t.Fatalf("groups %v, bad lines %d: want t in g and h, u in g, unlabelled in none; 4 bad lines (testdata/compare's three and an empty one)",
			groups, sum.Input.BadLines)
	}
	for _, k := range compareKinds {
		if _, err := os.Stat(filepath.Join(out, k.prefix+"_g.png")); err != nil {
			t.Errorf("group g's plot: %v", err)
		}
		for _, none := range []string{k.prefix + "_h.png", k.prefix + ".png"} {
			if _, err := os.Stat(filepath.Join(out, none)); err == nil {
				t.Errorf("%s written: group h has one scenario, and groups replace the comparison of all", none)
			}
		}
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "### g: t vs u\n\n![compare_cdf_g.png](compare_cdf_g.png)") {
		t.Errorf("report.md lacks group g's section:\n%s", report)
	}
}
