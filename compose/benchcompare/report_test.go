package benchcompare

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// fixedReport is a report with every case the tables show: a reference,
// ratios, a zero reference (loss), a failed broker and ramp steps.
func fixedReport() Report {
	fig := func(p50, p99, max, rate float64, loss int64, bcpu, lcpu, rss float64) Figures {
		return Figures{P50MS: p50, P99MS: p99, MaxMS: max, MsgPerS: rate, Loss: loss, Deliveries: 10000,
			BrokerCPUPer1k: bcpu, LoadCPUPer1k: lcpu, BrokerRSSMB: rss}
	}
	return Report{
		Date:     "2026-12-01T05:00:00Z",
		Machine:  Machine{Cores: 2, GoVersion: "go1.26.8", OS: "linux/amd64", Mosquitto: "2.0.11"},
		Command:  "make bench-compare",
		Loads:    []string{"pairs-1", "ramp"},
		LoadInfo: []string{"closed loop, one pair.", "three nodes, rising rates."},
		Brokers:  []string{"mosquitto", "mochi", "process", "machine"},
		Results: []Result{
			{Load: "pairs-1", Broker: "mosquitto", Figures: fig(0.1, 0.4, 2, 8000, 0, 0.02, 0.05, 5)},
			{Load: "pairs-1", Broker: "mochi", Figures: fig(0.12, 0.5, 3, 7000, 0, 0.04, 0.05, 12)},
			{Load: "pairs-1", Broker: "process", Figures: fig(0.2, 1.2, 9.5, 5000, 2, 0.08, 0.06, 30.5), RoundsMsgPerS: []float64{5100, 4800.4, 5000}},
			{Load: "pairs-1", Broker: "machine", Error: "machine exited before listening on 127.0.0.1:1\n(log: boom)"},
			{Load: "ramp", Broker: "mosquitto", AtLeast: true, Figures: fig(0.5, 3, 8, 4800, 0, 0.02, 0.2, 9),
				Steps: []RampStep{{TotalRate: 2400, Passed: true}, {TotalRate: 4800, Passed: true}}},
			{Load: "ramp", Broker: "process", Figures: fig(1, 20, 40, 2400, 0, 0.1, 0.2, 40),
				Steps: []RampStep{{TotalRate: 2400, Passed: true}, {TotalRate: 4800, Figures: Figures{P99MS: 180}}}},
			{Load: "ramp", Broker: "machine", Steps: []RampStep{{TotalRate: 2400, Figures: Figures{Loss: 3}}},
				Figures: Figures{GroupCommits: GroupCommits{Fsyncs: 6247, AppendsPerFsync: 3.6289, FsyncMeanMS: 0.4317}}},
		},
	}
}

func TestMarkdownGolden(t *testing.T) {
	checkGolden(t, "compare.golden.md", fixedReport().Markdown())
}

// checkGolden compares got with testdata/name (go test -update rewrites it).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (go test -update writes it): %v", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -update to accept):\n%s", path, got)
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		ours, ref float64
		want      string
	}{
		{2, 1, "2.00"}, {1, 4, "0.25"}, {0, 3, "0.00"}, {5, 0, "—"}, {0, 0, "—"},
	}
	for _, tt := range tests {
		if got := Ratio(tt.ours, tt.ref); got != tt.want {
			t.Errorf("Ratio(%v, %v) = %q, want %q", tt.ours, tt.ref, got, tt.want)
		}
	}
}

func TestReplaceBetweenMarkers(t *testing.T) {
	tests := []struct {
		name, doc, want, wantErr string
	}{
		{name: "replaces the old table",
			doc:  "# T\n\n## Measured\n" + MarkerStart + "\nold\ntable\n" + MarkerEnd + "\nrest\n",
			want: "# T\n\n## Measured\n" + MarkerStart + "\nNEW\n" + MarkerEnd + "\nrest\n"},
		{name: "empty between markers",
			doc:  "a " + MarkerStart + MarkerEnd + " b",
			want: "a " + MarkerStart + "\nNEW\n" + MarkerEnd + " b"},
		{name: "no markers", doc: "# README\n", wantErr: "markers"},
		{name: "end only", doc: MarkerEnd + "\n", wantErr: "markers"},
		{name: "reversed", doc: MarkerEnd + "\n" + MarkerStart + "\n", wantErr: "markers"},
		{name: "twice", doc: MarkerStart + MarkerEnd + MarkerStart + MarkerEnd, wantErr: "more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReplaceBetweenMarkers(tt.doc, "NEW\n\n")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestUpdateReadme(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "README.md")
	if err := os.WriteFile(path, []byte("intro\n"+MarkerStart+"\n"+MarkerEnd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := fixedReport()
	if err := r.updateReadme(path, filepath.Join(dir, "results", "bench")); err != nil {
		t.Fatalf("updateReadme: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "| mochi |") || !strings.HasPrefix(string(b), "intro\n"+MarkerStart) ||
		!strings.Contains(string(b), "(results/bench/compare.md)") || strings.Contains(string(b), "broker RSS MB") {
		t.Errorf("README after update (want the summary with a link to results/bench/compare.md):\n%s", b)
	}
	missing := filepath.Join(dir, "plain.md")
	if err := os.WriteFile(missing, []byte("no markers here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.updateReadme(missing, dir); err == nil || !strings.Contains(err.Error(), "plain.md") {
		t.Errorf("updateReadme without markers: error = %v, want one naming the file", err)
	}
}

func TestWriteReportFiles(t *testing.T) {
	dir := t.TempDir()
	r := fixedReport()
	if err := r.save(cmdLine{out: dir}); err != nil {
		t.Fatalf("save: %v", err)
	}
	for _, name := range []string{"compare.json", "compare.md", "compare.png"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v (size %d)", name, err, sizeOf(fi))
		}
	}
}

func sizeOf(fi os.FileInfo) int64 {
	if fi == nil {
		return -1
	}
	return fi.Size()
}

// TestWriteReportAllFailed: a load no broker finished still gets its
// report and plot (a panel saying so), not a crash.
func TestWriteReportAllFailed(t *testing.T) {
	dir := t.TempDir()
	r := fixedReport()
	r.Loads, r.Brokers = []string{"pairs-1"}, []string{"machine"}
	r.Results = []Result{{Load: "pairs-1", Broker: "machine", Error: "machine: exit code -1"}}
	if err := r.save(cmdLine{out: dir}); err != nil {
		t.Fatalf("save: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "compare.png")); err != nil || fi.Size() == 0 {
		t.Fatalf("compare.png: %v (size %d)", err, sizeOf(fi))
	}
}

func TestMiddleRound(t *testing.T) {
	r := func(rate float64, err string) Result {
		return Result{Load: "pairs-1", Broker: "process", Figures: Figures{MsgPerS: rate, P50MS: 1000 / rate}, Error: err}
	}
	tests := []struct {
		name      string
		rounds    []Result
		wantRate  float64
		wantErr   string
		wantRates []float64
	}{
		{"the median of three", []Result{r(3000, ""), r(1000, ""), r(2000, "")}, 2000, "", []float64{3000, 1000, 2000}},
		{"the lower middle of two", []Result{r(3000, ""), r(1000, "")}, 1000, "", []float64{3000, 1000}},
		{"one round, no list", []Result{r(1500, "")}, 1500, "", nil},
		{"a failed round fails the load", []Result{r(3000, ""), r(0, "exit 1")}, 0, "exit 1", nil},
		{"no rounds", nil, 0, "no rounds ran", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := middleRound(tc.rounds)
			if got.MsgPerS != tc.wantRate || got.Error != tc.wantErr || !slices.Equal(got.RoundsMsgPerS, tc.wantRates) {
				t.Errorf("middleRound = rate %g, error %q, rounds %v; want %g, %q, %v",
					got.MsgPerS, got.Error, got.RoundsMsgPerS, tc.wantRate, tc.wantErr, tc.wantRates)
			}
			if tc.wantErr == "" && got.P50MS != 1000/tc.wantRate {
				t.Errorf("the figures are not the middle round's: p50 %g", got.P50MS)
			}
		})
	}
}

// TestSummaryGolden: the README summary has a row per distchat broker, the
// key ratio of each load, "failed" for a broker that did not run, the loss
// beside a ratio, and the link to the full tables.
func TestSummaryGolden(t *testing.T) {
	r := fixedReport()
	r.Results = append(r.Results,
		Result{Load: "pairs-1", Broker: "cluster", Figures: Figures{MsgPerS: 4000, Loss: 7}},
		Result{Load: "ramp", Broker: "mochi", AtLeast: true, Figures: Figures{MsgPerS: 4800},
			Steps: []RampStep{{TotalRate: 2400, Passed: true}, {TotalRate: 4800, Passed: true}}})
	r.Brokers = append(r.Brokers, "cluster")
	got := r.Summary("results/bench/compare.md")
	checkGolden(t, "summary.golden.md", got)
	if lines := strings.Count(got, "\n"); lines > 12 {
		t.Errorf("summary is %d lines; the README keeps it short", lines)
	}
}

func TestSummaryCell(t *testing.T) {
	r := fixedReport()
	tests := []struct {
		load, broker, want string
	}{
		{"pairs-1", "mochi", "0.88"},            // msg/s 7000 ÷ 8000
		{"pairs-1", "process", "0.62 (loss 2)"}, // a closed loop's loss shows
		{"pairs-1", "machine", "failed"},        // it never listened
		{"ramp", "process", "0.50"},             // capacity 2400 ÷ 4800
		{"ramp", "machine", "0.00"},             // its first step failed: capacity 0
		{"ramp", "mochi", "—"},                  // not run under this load
		{"chat-3x333", "process", "—"},          // no such load
	}
	for _, tt := range tests {
		if got := r.summaryCell(tt.load, tt.broker); got != tt.want {
			t.Errorf("summaryCell(%s, %s) = %q, want %q", tt.load, tt.broker, got, tt.want)
		}
	}
	r.Results = append(r.Results, Result{Load: "chat-3x333", Broker: "mosquitto", Figures: Figures{P99MS: 2}},
		Result{Load: "chat-3x333", Broker: "cluster", Figures: Figures{P99MS: 5000, Loss: 40}})
	if got := r.summaryCell("chat-3x333", "cluster"); got != "2500.00 (loss 40)" {
		t.Errorf("chat load cell = %q, want the p99 ratio with the loss", got)
	}
}
