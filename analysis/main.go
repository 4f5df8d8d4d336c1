package analysis

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"path/filepath"
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

SIGINT (Ctrl-C) or SIGTERM stops the analysis in any stage, removes its
temporary files and a partial messages.csv, and exits with 130.

Exit codes: 0 done, 1 the analysis failed (unreadable or unusable input, an
output not written), 2 bad command line, 130 interrupted.

Flags:
`

// The exit codes of Main.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitInterrupted = 130 // 128 + SIGINT, as shells report a command Ctrl-C stopped
)

// Main runs the analysis command and returns its exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "gen" {
		return genMain(ctx, args[1:], stdout, stderr)
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
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "analysis: no input given (see analysis -h)")
		return exitUsage
	}
	if err := opt.validate(); err != nil {
		fmt.Fprintln(stderr, "analysis:", err)
		return exitUsage
	}
	opt.Inputs = fs.Args()
	if !opt.Quiet {
		opt.Progress = stderr
	}
	sum, err := Run(ctx, opt, stdin)
	if err != nil {
		fmt.Fprintln(stderr, "analysis:", err)
		if ctx.Err() != nil {
			return exitInterrupted
		}
		return exitFailed
	}
	for _, s := range sum.Scenarios {
		if s.Sent == 0 && opt.Warmup+opt.Cooldown > 0 {
			fmt.Fprintf(stderr, "analysis: warning: -warmup %s and -cooldown %s leave nothing of scenario %s to measure\n",
				opt.Warmup, opt.Cooldown, s.Name)
		}
		fmt.Fprintf(stdout, "%s: sent %d, expected %d, received %d (%d via sync), lost %d, duplicates %d, p50 %.3f ms, p99 %.3f ms, %.1f msg/s, longest wait %.3f ms\n",
			s.Name, s.Sent, s.Expected, s.Received, s.ReceivedSync, s.Lost, s.Duplicates, s.LatencyMS.P50, s.LatencyMS.P99, s.ThroughputMsgsPerS, s.LongestWaitMS)
	}
	if sum.Input.BadLines > 0 {
		fmt.Fprintf(stdout, "%d of %d lines were not chat node events and were skipped\n", sum.Input.BadLines, sum.Input.Lines)
	}
	fmt.Fprintf(stdout, "wrote %s/summary.json, summary.csv, messages.csv, report.md%s\n", opt.Out,
		map[bool]string{false: " and plots", true: ""}[opt.NoPlots])
	return exitOK
}

// Options are the analysis' inputs and settings.
type Options struct {
	Inputs           []string
	Out              string
	Warmup, Cooldown time.Duration
	Quiet, NoPlots   bool
	// Progress receives progress lines; nil for none.
	Progress io.Writer

	// enter, if set, is called on entering each stage (for tests).
	enter func(stage)
}

// Run analyses the inputs and writes every output file. When ctx ends it
// stops, removes its temporary files and returns an error wrapping ctx's.
func Run(ctx context.Context, opt Options, stdin io.Reader) (Summary, error) {
	sum, _, err := analyse(ctx, opt, stdin)
	return sum, err
}

// validate checks the options a user gives.
func (o Options) validate() error {
	switch {
	case o.Warmup < 0:
		return fmt.Errorf("-warmup %s is negative: give the time to leave out at the start, 0 for none", o.Warmup)
	case o.Cooldown < 0:
		return fmt.Errorf("-cooldown %s is negative: give the time to leave out at the end, 0 for none", o.Cooldown)
	}
	return nil
}

// stage is the step an analysis is in; an interrupted analysis names it.
type stage int

// The stages, in order.
const (
	stageInput  stage = iota // finding the inputs, copying standard input and pipes
	stagePass1               // reading every file for its facts
	stagePass2               // merging the files, matching the messages
	stageOutput              // writing the summaries, plots and report
)

// String names the stage for progress lines and errors.
func (s stage) String() string {
	return [...]string{"reading the input", "pass 1 of 2", "pass 2 of 2", "writing the outputs"}[s]
}

// analyse is Run that also returns the model, for tests.
func analyse(ctx context.Context, opt Options, stdin io.Reader) (sum Summary, m *model, err error) {
	if err := opt.validate(); err != nil {
		return Summary{}, nil, err
	}
	st := stageInput
	enter := func(s stage) {
		if st = s; opt.enter != nil {
			opt.enter(s)
		}
	}
	enter(stageInput)
	files, cleanup, err := expandInputs(ctx, opt.Inputs, stdin, opt.Progress)
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("interrupted in %s: %w", st, ctx.Err())
		}
		err = errors.Join(err, cleanup())
	}()
	if err != nil {
		return Summary{}, nil, err
	}
	p := &progress{w: opt.Progress}
	defer p.end()
	enter(stagePass1)
	m, facts, err := firstPass(ctx, opt, files, p)
	if err != nil {
		return Summary{}, nil, err
	}
	enter(stagePass2)
	if err := secondPass(ctx, opt.Out, m, files, facts, p); err != nil {
		return Summary{}, nil, err
	}
	m.endPass2()
	sum = m.summarize()
	if len(sum.Scenarios) == 0 {
		return sum, nil, errors.New("no sent messages in the input: nothing to measure (the logs need the nodes' \"sent\" lines)")
	}
	enter(stageOutput)
	return sum, m, writeOutputs(ctx, opt, sum)
}

// firstPass reads every file for its facts (nodes, runs, time spans) and
// builds the model pass two fills.
func firstPass(ctx context.Context, opt Options, files []string, p *progress) (*model, []fileFacts, error) {
	facts := make([]fileFacts, len(files))
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, nil, fmt.Errorf("input: %w", err)
		}
		p.total += st.Size()
		facts[i] = fileFacts{sends: map[string]*sendSpan{}, runs: map[string]bool{}, nodes: map[[2]string]bool{}}
	}
	m := &model{runs: map[string]*scenario{}, seed: maphash.MakeSeed(), files: len(files)}
	p.start(stagePass1)
	err := scanLines(ctx, files, p, func(i int, line []byte) { facts[i].pass1(line) })
	p.end()
	if err := cmp.Or(err, ctx.Err()); err != nil {
		return nil, nil, err
	}
	var raw, events int64
	for i := range files {
		raw, events = raw+facts[i].lines, events+facts[i].eventLines
		m.apply(&facts[i])
	}
	if raw == 0 {
		return nil, nil, fmt.Errorf("the input (%s) is empty", strings.Join(opt.Inputs, " "))
	}
	if events == 0 {
		return nil, nil, fmt.Errorf("none of the %d lines is a chat node log event: are these distchat node logs?", raw)
	}
	if err := m.endPass1(int64(opt.Warmup), int64(opt.Cooldown)); err != nil {
		return nil, nil, err
	}
	return m, facts, nil
}

// secondPass matches every message with its deliveries into m and writes
// messages.csv into out (only whole: an interrupted pass leaves none).
func secondPass(ctx context.Context, out string, m *model, files []string, facts []fileFacts, p *progress) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o777); err != nil {
		return fmt.Errorf("create output dir: %w", err)
	}
	mc, err := newMessagesCSV(filepath.Join(out, "messages.csv"))
	if err != nil {
		return err
	}
	p.start(stagePass2)
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
	return errors.Join(err, mc.close(err == nil))
}

// writeOutputs writes the summaries, the plots and the report.
func writeOutputs(ctx context.Context, opt Options, sum Summary) error {
	if err := writeJSON(filepath.Join(opt.Out, "summary.json"), sum); err != nil {
		return err
	}
	if err := writeSummaryCSV(filepath.Join(opt.Out, "summary.csv"), sum); err != nil {
		return err
	}
	var plots reportPlots
	if !opt.NoPlots {
		var err error
		if plots, err = writePlots(ctx, opt.Out, sum); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return writeReport(filepath.Join(opt.Out, "report.md"), sum, plots)
}

// reportPlots are the plot files written, per scenario and per comparison
// group ("" for the comparison of all scenarios).
type reportPlots struct {
	scenario, compare map[string][]string
}

// writePlots draws every scenario's plots and every comparison's.
func writePlots(ctx context.Context, dir string, sum Summary) (reportPlots, error) {
	plots := reportPlots{scenario: map[string][]string{}, compare: map[string][]string{}}
	for _, s := range sum.Scenarios {
		names, err := savePlots(ctx, dir, scenarioPlotKinds, s.Name, fileName(s.Name), scenarioPlotData(s))
		if err != nil {
			return plots, err
		}
		plots.scenario[s.Name] = names
	}
	for _, c := range comparisons(sum.Scenarios) {
		title, suffix := " by scenario", ""
		if c.Group != "" {
			title, suffix = ": "+c.Group+" comparison", "_"+fileName(c.Group)
		}
		names, err := savePlots(ctx, dir, compareKinds, title, suffix, comparePlotData(c.Scenarios))
		if err != nil {
			return plots, err
		}
		plots.compare[c.Group] = names
	}
	return plots, nil
}
