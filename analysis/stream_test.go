package analysis

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distchat/distchat/analysis/percentile"
)

// TestHistPercentiles compares the histogram's percentiles with exact
// nearest-rank ones on samples of several shapes: below 2.048 ms they must
// be equal, above at most 1/histSub (0.098%) below, never above.
func TestHistPercentiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	tests := []struct {
		name string
		gen  func() int32
	}{
		{"sub-millisecond", func() int32 { return int32(rng.IntN(2048)) }},
		{"exponential around 1 ms", func() int32 { return int32(rng.ExpFloat64() * 1000) }},
		{"log-uniform 1 µs to 100 s", func() int32 { return int32(math.Pow(10, rng.Float64()*8)) }},
		{"two modes: live and catch-up", func() int32 {
			if rng.IntN(100) == 0 {
				return int32(5e6 + rng.IntN(3e6))
			}
			return int32(300 + rng.IntN(2000))
		}},
		{"one value", func() int32 { return 123456 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h hist
			vals := make([]int32, 50_000)
			for i := range vals {
				vals[i] = tt.gen()
				h.add(vals[i])
			}
			slices.Sort(vals)
			for _, q := range []int64{500, 900, 950, 990, 999, 1000} {
				exact := percentile.Of(vals, q)
				got := h.quantile(q)
				if exact < 2*histSub && got != exact {
					t.Errorf("per mille %d = %d, want exactly %d", q, got, exact)
				}
				if got > exact || float64(exact-got) > float64(exact)/histSub {
					t.Errorf("per mille %d = %d, exact %d: off by more than 1/%d", q, got, exact, histSub)
				}
			}
			l := h.latency()
			if l.N != len(vals) || l.Min != ms(vals[0]) || l.Max != ms(vals[len(vals)-1]) {
				t.Errorf("n, min, max = %d %v %v, want %d %v %v", l.N, l.Min, l.Max, len(vals), ms(vals[0]), ms(vals[len(vals)-1]))
			}
		})
	}
}

// TestMemoryFollowsMessagesInFlight checks that the analysis holds the
// messages in flight, not the run: on a long run the most messages held at
// once stays a small fraction of those sent, plus the lost ones (which
// stay until the end, when they are counted). The answers do not depend
// on the order the inputs come in: the same logs concatenated into one
// input (every line of one node, then the next) give the same figures.
func TestMemoryFollowsMessagesInFlight(t *testing.T) {
	dir := t.TempDir()
	const lines = 200_000
	if err := generate(context.Background(), dir, "mem", 3, lines, 0.001); err != nil {
		t.Fatal(err)
	}
	var cat strings.Builder
	for _, n := range []string{"n0.log", "n1.log", "n2.log"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		cat.Write(b)
	}
	catFile := filepath.Join(t.TempDir(), "all.log")
	if err := os.WriteFile(catFile, []byte(cat.String()), 0o666); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		input   string
		maxPeak func(sent, lost int64) int64
	}{
		{"one log per node: bounded", dir, func(sent, lost int64) int64 { return lost + sent/100 }},
		{"concatenated: correct, not bounded", catFile, func(sent, lost int64) int64 { return sent }},
	}
	var want ScenarioSummary
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, m, err := analyse(context.Background(), Options{Inputs: []string{tt.input}, Out: t.TempDir(), NoPlots: true}, nil)
			if err != nil {
				t.Fatal(err)
			}
			s := sum.Scenarios[0]
			if s.Sent != lines/4 || s.Lost == 0 || s.Received+s.Lost != s.Expected {
				t.Fatalf("sent %d expected %d received %d lost %d: want %d sent and a few lost", s.Sent, s.Expected, s.Received, s.Lost, lines/4)
			}
			if peak := int64(m.runs["mem"].peakInFlight); peak > tt.maxPeak(s.Sent, s.Lost) {
				t.Errorf("held %d messages at once (sent %d, lost %d), want at most %d", peak, s.Sent, s.Lost, tt.maxPeak(s.Sent, s.Lost))
			}
			if i == 0 {
				want = s
				return
			}
			got := [6]int64{s.Sent, s.Expected, s.Received, s.Lost, s.Duplicates, s.Reordered}
			if w := [6]int64{want.Sent, want.Expected, want.Received, want.Lost, want.Duplicates, want.Reordered}; got != w {
				t.Errorf("sent, expected, received, lost, dup, reordered = %v, want %v as from separate logs", got, w)
			}
			if s.LatencyMS != want.LatencyMS {
				t.Errorf("latency %+v, want %+v", s.LatencyMS, want.LatencyMS)
			}
		})
	}
}

// TestMatchingOrder: real nodes often log a delivery before the sender logs
// "sent" (the echo can beat the PUBACK); a repeat that arrives after its
// message is finished, unflagged by the node, is still a duplicate; a
// repeated "sent" line does not make a second message; a delivery whose
// "sent" line never comes is unmatched; a node that was not expected to
// receive a message (no "subscribed" line) but did, after the message was
// finished, counts as received, and its repeat as a duplicate.
func TestMatchingOrder(t *testing.T) {
	const sub = `{"event":"subscribed","node":"%s","room":"r","run":"o","ts_ns":1}`
	recv := func(node, id string, ts int) string {
		return `{"event":"received","from":"a","id":"` + id + `","node":"` + node + `","recv_ns":` + itoa(int64(ts)) +
			`,"room":"r","run":"o","sent_ns":1000,"seq":1,"ts_ns":` + itoa(int64(ts)) + `,"via":"live","duplicate":false}`
	}
	sent := func(id string, ts int) string {
		return `{"ack_us":5,"event":"sent","id":"` + id + `","node":"a","room":"r","run":"o","sent_ns":1000,"ts_ns":` + itoa(int64(ts)) + `}`
	}
	dir := t.TempDir()
	logs := map[string][]string{
		"a.log": {strings.Replace(sub, "%s", "a", 1), recv("a", "m1", 2000), sent("m1", 3000), sent("m1", 3500),
			recv("a", "m2", 5000), sent("m2", 6000)},
		"b.log": {strings.Replace(sub, "%s", "b", 1), recv("b", "m1", 2500), recv("b", "m2", 5500),
			recv("b", "m1", 9000), recv("b", "ghost", 9500)},
		// c never logged joining: not expected, but what it receives counts
		"c.log": {recv("c", "m1", 9200), recv("c", "m1", 9300)},
	}
	for name, ls := range logs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(ls, "\n")+"\n"), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	s := runOn(t, []string{dir}, Options{NoPlots: true}, "").Scenarios[0]
	got := [6]int64{s.Sent, s.Expected, s.Received, s.Lost, s.Duplicates, s.Unmatched}
	if want := [6]int64{2, 4, 5, 0, 2, 1}; got != want {
		t.Fatalf("sent, expected, received, lost, duplicates, unmatched = %v, want %v", got, want)
	}
}

// TestLinearTicks: axis labels at 1-2-5 steps, four to eight of them, with
// just the decimals the step needs (a float artefact like
// "1.2000000000000002" once showed on the histogram's axis).
func TestLinearTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		whole  bool
		want   string
	}{
		{0.35, 2.04, false, "0.5 1.0 1.5 2.0"},
		{0, 1, false, "0.0 0.2 0.4 0.6 0.8 1.0"},
		{0, 27, true, "0 5 10 15 20 25"},
		{0, 3500, false, "0 500 1000 1500 2000 2500 3000 3500"},
		{1.41, 1.42, false, "1.410 1.412 1.414 1.416 1.418 1.420"},
		{0, 3, true, "0 1 2 3"},
		{5, 5, false, "5"},
	}
	for _, tt := range tests {
		var labels []string
		for _, tk := range (linTicks{tt.whole}).Ticks(tt.lo, tt.hi) {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
		}
		if got := strings.Join(labels, " "); got != tt.want {
			t.Errorf("ticks(%v, %v, whole %v) = %q, want %q", tt.lo, tt.hi, tt.whole, got, tt.want)
		}
	}
}

// TestMergeGroups: files are merged by time only with files that share a
// run label, so one scenario's files are open at a time.
func TestMergeGroups(t *testing.T) {
	runs := func(rs ...string) fileFacts {
		ff := fileFacts{runs: map[string]bool{}, eventLines: 1}
		for _, r := range rs {
			ff.runs[r] = true
		}
		return ff
	}
	tests := []struct {
		name  string
		files []fileFacts
		want  string
	}{
		{"one scenario", []fileFacts{runs("a"), runs("a"), runs("a")}, "[[0 1 2]]"},
		{"two scenarios interleaved", []fileFacts{runs("a"), runs("b"), runs("a"), runs("b")}, "[[0 2] [1 3]]"},
		{"a file with both joins them", []fileFacts{runs("a"), runs("b"), runs("c"), runs("b", "a")}, "[[0 1 3] [2]]"},
		{"a file without events stands alone", []fileFacts{runs("a"), {}, runs("a")}, "[[0 2] [1]]"},
		{"a file whose run is unknown joins everything", []fileFacts{runs("a"), runs("b"), {eventLines: 5}}, "[[0 1 2]]"},
		{"unlabelled logs share the empty label", []fileFacts{runs(""), runs("x"), runs("")}, "[[0 2] [1]]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(mergeGroups(tt.files)); got != tt.want {
			t.Errorf("%s: groups %s, want %s", tt.name, got, tt.want)
		}
	}
}

// TestRotatedLog: a node's log split where one part holds only "received"
// lines (no line that names the run's members) still gives the known
// answers of testdata/basic: such a file is merged with every other.
func TestRotatedLog(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"b.log", "c.log", "drill.log"} {
		b, err := os.ReadFile(filepath.Join("testdata/basic", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata/basic", "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(strings.TrimSuffix(string(b), "\n"), "\n")
	var part1, part2 []string
	for i, l := range lines {
		if i == 7 || i == 8 { // a's last two deliveries
			if !strings.Contains(l, `"event":"received"`) {
				t.Fatalf("line %d of a.log is not a delivery: %s", i+1, l)
			}
			part2 = append(part2, l)
			continue
		}
		part1 = append(part1, l)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.log"), []byte(strings.Join(part1, "")+"\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.1.log"), []byte(strings.Join(part2, "")), 0o666); err != nil {
		t.Fatal(err)
	}
	// An empty file beside them is read first and must not end anyone's log.
	if err := os.WriteFile(filepath.Join(dir, "0-empty.log"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	s := runOn(t, []string{dir}, Options{NoPlots: true}, "").Scenarios[0]
	got := [7]int64{s.Sent, s.Expected, s.Received, s.Lost, s.Duplicates, s.Reordered, s.Unmatched}
	if want := [7]int64{6, 13, 12, 1, 1, 1, 0}; got != want {
		t.Fatalf("sent, expected, received, lost, dup, reordered, unmatched = %v, want %v (as testdata/basic)", got, want)
	}
}

// TestMemoryOutsideTheWindow: messages left out by -warmup are forgotten as
// soon as they are delivered, like the measured ones (they were once held
// to the end).
func TestMemoryOutsideTheWindow(t *testing.T) {
	dir := t.TempDir()
	if err := generate(context.Background(), dir, "w", 3, 200_000, 0); err != nil { // 50,000 messages over 5 s
		t.Fatal(err)
	}
	sum, m, err := analyse(context.Background(), Options{Inputs: []string{dir}, Out: t.TempDir(), NoPlots: true, Warmup: 4 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := sum.Scenarios[0]; s.Sent == 0 || s.Sent > 12_000 || s.Lost != 0 {
		t.Fatalf("sent %d lost %d: want the last fifth of 50,000 measured, none lost", s.Sent, s.Lost)
	}
	if peak := m.runs["w"].peakInFlight; peak > 500 {
		t.Errorf("held %d messages at once, want a few (in flight only)", peak)
	}
}

// TestNodeThatStops: a node whose log stops early (it crashed and never
// came back) is not expected to receive what was sent after its last line,
// and the messages waiting for it are let go when its log ends, not held
// to the end of the run.
func TestNodeThatStops(t *testing.T) {
	dir := t.TempDir()
	if err := generate(context.Background(), dir, "stop", 3, 80_000, 0); err != nil { // 20,000 messages
		t.Fatal(err)
	}
	path := filepath.Join(dir, "n1.log")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if err := os.WriteFile(path, []byte(strings.Join(lines[:40], "")), 0o666); err != nil { // n1 stops at once
		t.Fatal(err)
	}
	// A drill's log spanning the whole run holds no node's lines: it must
	// not keep n1's end from being known.
	drill := `{"event":"fault","fault":"partition","node":"drill","phase":"start","run":"stop","target":"n2","ts_ns":1800000000000000000}` + "\n" +
		`{"event":"fault","fault":"partition","node":"drill","phase":"end","run":"stop","target":"n2","ts_ns":1900000000000000000}` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "drill.log"), []byte(drill), 0o666); err != nil {
		t.Fatal(err)
	}
	sum, m, err := analyse(context.Background(), Options{Inputs: []string{dir}, Out: t.TempDir(), NoPlots: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := sum.Scenarios[0]
	// n1's last deliveries may be cut off with its log: a few lost
	if s.Lost > 10 || s.Expected >= 3*s.Sent || s.Expected <= 2*s.Sent || s.Unmatched == 0 {
		t.Errorf("sent %d expected %d lost %d unmatched %d: want n1 expected only before it stopped, its own messages unmatched (their \"sent\" lines are cut off)",
			s.Sent, s.Expected, s.Lost, s.Unmatched)
	}
	if peak := m.runs["stop"].peakInFlight; peak > 500 {
		t.Errorf("held %d messages at once, want a few: n1's end lets them go", peak)
	}
}

// TestWindowLeavesNothing: -warmup and -cooldown longer than a scenario
// give a zero window and a warning, not a negative window.
func TestWindowLeavesNothing(t *testing.T) {
	var stdout, stderr strings.Builder
	code := Main(context.Background(), []string{"-q", "-no-plots", "-warmup", "1s", "-cooldown", "1s", "-out", t.TempDir(), "testdata/basic"},
		strings.NewReader(""), &stdout, &stderr)
	if code != 0 || !strings.Contains(stderr.String(), "leave nothing of scenario t") || !strings.Contains(stdout.String(), "t: sent 0") {
		t.Fatalf("exit %d, stdout %q, stderr %q: want a warning and sent 0", code, stdout.String(), stderr.String())
	}
	sum := runOn(t, []string{"testdata/basic"}, Options{NoPlots: true, Warmup: time.Second, Cooldown: time.Second}, "")
	if w := sum.Scenarios[0].WindowS; w != 0 {
		t.Errorf("window %v s, want 0", w)
	}
}

// feedPipe writes data into the named pipe at path, once a reader opens it.
func feedPipe(path string, data []byte, done chan<- error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write(data)
		err = errors.Join(err, f.Close())
	}
	done <- err
}

// TestPipeInput: an input that is a named pipe (as bash's <(...) gives) is
// read once into a temporary file, so both passes see every line; before,
// the second pass waited for a writer that was gone.
func TestPipeInput(t *testing.T) {
	var all []byte
	for _, f := range []string{"a.log", "b.log", "c.log"} {
		b, err := os.ReadFile(filepath.Join("testdata/basic", f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	fifo := filepath.Join(t.TempDir(), "logs.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	writeErr := make(chan error, 2)
	t.Cleanup(func() {
		// a writer still blocked opening the pipe (the analysis never read
		// it) is let go by a reader that opens and closes it
		if f, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	go feedPipe(fifo, all, writeErr)
	s := runOn(t, []string{fifo}, Options{NoPlots: true}, "").Scenarios[0]
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if s.Sent != 6 || s.Expected != 13 || s.Received != 12 || s.Lost != 1 {
		t.Fatalf("sent %d expected %d received %d lost %d, want 6 13 12 1 (testdata/basic)", s.Sent, s.Expected, s.Received, s.Lost)
	}
	// The same pipe found in a directory.
	if err := os.Rename(fifo, filepath.Join(filepath.Dir(fifo), "all.log")); err != nil {
		t.Fatal(err)
	}
	fifo = filepath.Join(filepath.Dir(fifo), "all.log")
	go feedPipe(fifo, all, writeErr)
	s = runOn(t, []string{filepath.Dir(fifo)}, Options{NoPlots: true}, "").Scenarios[0]
	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	if s.Sent != 6 || s.Expected != 13 || s.Received != 12 {
		t.Fatalf("from a directory: sent %d expected %d received %d, want 6 13 12", s.Sent, s.Expected, s.Received)
	}
}
