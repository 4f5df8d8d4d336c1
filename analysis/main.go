package analysis

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

const usage = `usage: analysis [flags] INPUT...
       analysis gen [flags]      write large synthetic node logs (for benchmarks)

Reads the JSON-lines logs of distchat chat nodes and writes into -out:
  summary.json   per scenario (run label): sent, expected, received, lost,
                 duplicates, reordered, latency and publish-ack percentiles,
                 throughput, per receiver and per sender
  summary.csv    one row per scenario and receiver
  messages.csv   one row per delivery
  report.md      tables and plots, ready to paste into a README
  *.png          latency CDF, histogram, latency over time (fault windows
                 shaded), throughput, loss per receiver; with two or more
                 scenarios also compare_cdf.png and compare_percentiles.png

INPUT is a file, a directory (its *.log and *.jsonl files), a glob, - for
standard input, or a pipe such as bash's <(...) (standard input and pipes are
copied to a temporary file: the analysis reads its input twice);
"docker-compose logs" output (lines prefixed "name | ") is understood. Bad
lines are counted and reported, never fatal.

"expected" counts each message once for each node subscribed to its room when
it was sent, the sender included (it receives its own messages: that is the
clock-free round trip); a direct message is expected once, at its recipient (a
node whose log has ended is expected to receive nothing sent after its last line).
lost = expected - unique received. Messages recovered from the room log
(via "sync") count as received and are also reported separately.
Percentiles are nearest rank over every delivery, read from a histogram:
exact below 2.048 ms, above at most 0.1% below the exact value (a real
sample); min, mean and max are exact. Memory holds the messages in flight
(and the lost ones), not the run: the logs are merged by time stamp and a
message is forgotten once every node that should receive it has.

Flags:
`

// Main runs the analysis command and returns its exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "gen" {
		return genMain(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("analysis", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var opt Options
	fs.StringVar(&opt.Out, "out", "analysis-out", "output `dir`ectory (created if missing)")
	fs.DurationVar(&opt.Warmup, "warmup", 0, "leave out messages sent in the first `duration` of each scenario (0: count all)")
	fs.DurationVar(&opt.Cooldown, "cooldown", 0, "leave out messages sent in the last `duration` of each scenario (0: count all)")
	fs.BoolVar(&opt.Quiet, "q", false, "no progress lines on stderr")
	fs.BoolVar(&opt.NoPlots, "no-plots", false, "skip the PNG plots (faster on huge inputs)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "analysis: no input given (see analysis -h)")
		return 2
	}
	opt.Inputs = fs.Args()
	if !opt.Quiet {
		opt.Progress = stderr
	}
	sum, err := Run(ctx, opt, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "analysis:", err)
		return 1
	}
	for _, s := range sum.Scenarios {
		if s.Sent == 0 && opt.Warmup+opt.Cooldown > 0 {
			fmt.Fprintf(stderr, "analysis: warning: -warmup %s and -cooldown %s leave nothing of scenario %s to measure\n",
				opt.Warmup, opt.Cooldown, s.Name)
		}
		fmt.Fprintf(stdout, "%s: sent %d, expected %d, received %d (%d via sync), lost %d, duplicates %d, p50 %.3f ms, p99 %.3f ms, %.1f msg/s\n",
			s.Name, s.Sent, s.Expected, s.Received, s.ReceivedSync, s.Lost, s.Duplicates, s.LatencyMS.P50, s.LatencyMS.P99, s.ThroughputMsgsPerS)
	}
	if sum.Input.BadLines > 0 {
		fmt.Fprintf(stdout, "%d of %d lines were not chat node events and were skipped\n", sum.Input.BadLines, sum.Input.Lines)
	}
	fmt.Fprintf(stdout, "wrote %s/summary.json, summary.csv, messages.csv, report.md%s\n", opt.Out,
		map[bool]string{false: " and plots", true: ""}[opt.NoPlots])
	return 0
}

// Options are the analysis' inputs and settings.
type Options struct {
	Inputs           []string
	Out              string
	Warmup, Cooldown time.Duration
	Quiet, NoPlots   bool
	// Progress receives progress lines; nil for none.
	Progress io.Writer
}

// Run analyses the inputs and writes every output file.
func Run(ctx context.Context, opt Options, stdin io.Reader) (Summary, error) {
	sum, _, err := analyse(ctx, opt, stdin)
	return sum, err
}

// analyse is Run that also returns the model, for tests.
func analyse(ctx context.Context, opt Options, stdin io.Reader) (Summary, *model, error) {
	files, cleanup, err := expandInputs(opt.Inputs, stdin, opt.Progress)
	defer cleanup()
	if err != nil {
		return Summary{}, nil, err
	}
	var total int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return Summary{}, nil, fmt.Errorf("input: %w", err)
		}
		total += st.Size()
	}
	m := newModel()
	m.files = len(files)
	p := &progress{w: opt.Progress, total: total}
	defer p.end()
	p.start("pass 1 of 2")
	facts := make([]fileFacts, len(files))
	err = scanLines(ctx, files, p, func(i int, line []byte) { facts[i].pass1(line) })
	p.end()
	if err != nil {
		return Summary{}, nil, err
	}
	if err := ctx.Err(); err != nil {
		return Summary{}, nil, err
	}
	var raw, events int64
	for i := range files {
		raw, events = raw+facts[i].lines, events+facts[i].eventLines
		m.apply(&facts[i])
	}
	if raw == 0 {
		return Summary{}, nil, fmt.Errorf("the input (%s) is empty", strings.Join(opt.Inputs, " "))
	}
	if events == 0 {
		return Summary{}, nil, fmt.Errorf("none of the %d lines is a chat node log event: are these distchat node logs?", raw)
	}
	if err := m.endPass1(int64(opt.Warmup), int64(opt.Cooldown)); err != nil {
		return Summary{}, nil, err
	}
	if err := os.MkdirAll(opt.Out, 0o777); err != nil {
		return Summary{}, nil, fmt.Errorf("create output dir: %w", err)
	}
	mc, err := newMessagesCSV(outPath(opt.Out, "messages.csv"))
	if err != nil {
		return Summary{}, nil, err
	}
	p.start("pass 2 of 2")
	n := 0
	for _, group := range mergeGroups(facts) {
		names := make([]string, len(group))
		for i, f := range group {
			names[i] = files[f]
		}
		ends := newNodeEnds(facts, group)
		err = mergeLines(names, p, func(r *rec, ok bool, c *cursor) bool {
			m.pass2(r, ok, c, mc.write)
			if n++; n&0xfff == 0 && ctx.Err() != nil {
				return false
			}
			return m.err == nil
		}, func(i int) {
			for _, k := range ends.fileDone(i) {
				m.nodeEnded(k[0], k[1])
			}
		})
		if err != nil || m.err != nil || ctx.Err() != nil {
			break
		}
	}
	p.end()
	err = errors.Join(err, m.err, ctx.Err())
	if err = errors.Join(err, mc.close()); err != nil {
		return Summary{}, nil, err
	}
	m.endPass2()
	sum := m.summarize()
	if len(sum.Scenarios) == 0 {
		return sum, nil, errors.New("no sent messages in the input: nothing to measure (the logs need the nodes' \"sent\" lines)")
	}
	if err := writeJSON(outPath(opt.Out, "summary.json"), sum); err != nil {
		return sum, m, err
	}
	if err := writeSummaryCSV(outPath(opt.Out, "summary.csv"), sum); err != nil {
		return sum, m, err
	}
	plots := map[string][]string{}
	var compare []string
	if !opt.NoPlots {
		for _, s := range sum.Scenarios {
			sc := m.runs[s.Name]
			names, err := plotScenario(opt.Out, s, scenarioPlotData(s, sc.timeline, sc.timeSync))
			if err != nil {
				return sum, m, err
			}
			plots[s.Name] = names
		}
		if len(sum.Scenarios) > 1 {
			if compare, err = plotComparison(opt.Out, comparePlotData(sum.Scenarios)); err != nil {
				return sum, m, err
			}
		}
	}
	return sum, m, writeReport(outPath(opt.Out, "report.md"), sum, plots, compare)
}
