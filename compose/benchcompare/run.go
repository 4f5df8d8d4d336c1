package benchcompare

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

const usageHead = `usage: benchcompare [flags]

Runs the same loads against Mosquitto, bare Mochi and the distchat broker
variants (log-off: no room log, in memory; process / machine: room log and
sessions on disk at that durability; cluster: three brokers in cluster mode,
the room log replicated three times, chat nodes spread over them) and writes compare.json, compare.md
(one table per load, each figure with its ratio ours ÷ Mosquitto) and
compare.png into -out.

Every broker is a child process on a free loopback port, started fresh for
each load (and each ramp step), so its CPU (user+sys) and peak RSS are that
load's alone. The loads, QoS 1 with 256 B chat envelopes:
  pairs-1, pairs-10  closed loop: N publisher/subscriber pairs, each waits for
                     its message before sending the next (latency = receipt -
                     publish call, one clock), in -pairs-rounds rounds: every
                     broker once per round in turn, figures from its middle
                     round by msg/s (short closed loops move with the machine)
  chat-3x333         open loop: 3 chatnode bench processes in one room, 333 msg/s each
  chat-10x100        open loop: 10 nodes, 100 msg/s each
  ramp               3 nodes at rising rates until loss or p99 > 100 ms:
                     the zero-loss capacity
It builds broker, chatnode, analysis and baremochi with go build (run it in
the repository). Progress goes to stderr. A quick subset:
  go run ./compose/cmd/benchcompare -brokers mosquitto,process -loads pairs-1,chat-3x333 \
      -pairs-duration 2s -pairs-rounds 1 -chat-duration 3s -out /tmp/bench

Flags:
`

// Main is the benchcompare command; it returns the exit code: 0 when every
// load ran, 1 when one failed (the report is still written), 2 on bad
// usage, 130 when interrupted.
func Main(ctx context.Context, args []string, stderr io.Writer) int {
	start := time.Now()
	progress := func(format string, a ...any) {
		fmt.Fprintf(stderr, "bench-compare %5.0fs: %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "benchcompare:", err)
		return 2
	}
	rep, err := run(ctx, cfg, progress)
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "benchcompare: interrupted; no report written")
		return 130
	}
	if err == nil {
		err = rep.save(cfg)
	}
	if err != nil {
		fmt.Fprintln(stderr, "benchcompare:", err)
		return 1
	}
	progress("wrote compare.json, compare.md, compare.png in %s", cfg.out)
	failed := 0
	for _, r := range rep.Results {
		if r.Error != "" {
			failed++
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "benchcompare: %d of %d loads failed (see compare.md)\n", failed, len(rep.Results))
		return 1
	}
	return 0
}

// cmdLine is the parsed command line.
type cmdLine struct {
	out, bin, readme, command string
	keep                      bool
	brokers                   []string
	loads                     []Load
	opts                      Options
}

func parseFlags(args []string, stderr io.Writer) (cmdLine, error) {
	var c cmdLine
	fs := flag.NewFlagSet("benchcompare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	brokers := fs.String("brokers", strings.Join(AllBrokers, ","), "comma-separated `brokers` to run")
	loads := fs.String("loads", "all", "comma-separated `loads` to run: pairs-1, pairs-10, chat-3x333, chat-10x100, ramp")
	rates := fs.String("ramp-rates", "100,200,400,800,1200,1600", "ramp steps: messages/s `per node`, increasing")
	fs.StringVar(&c.out, "out", "results/bench", "output `dir`ectory")
	fs.StringVar(&c.bin, "bin", "", "take broker, chatnode and analysis from this `dir` (e.g. bin from make build) instead of building them")
	fs.StringVar(&c.readme, "readme", "", "also put a summary of the tables, with a link to compare.md, between the bench-compare markers of this `file`")
	fs.StringVar(&c.command, "command", "", "the command named in the report (default: this command line)")
	fs.BoolVar(&c.keep, "keep", false, "keep the scratch directory (broker and node logs) and print where it is")
	fs.IntVar(&c.opts.Size, "size", 256, "message size in `bytes`")
	fs.DurationVar(&c.opts.PairsWarmup, "pairs-warmup", time.Second, "pair loads: unmeasured warm-up")
	fs.DurationVar(&c.opts.PairsDuration, "pairs-duration", 3*time.Second, "pair loads: measured duration of one round")
	fs.IntVar(&c.opts.PairsRounds, "pairs-rounds", 3, "pair loads: rounds, every broker once per round in turn; its figures are its middle round by msg/s")
	fs.DurationVar(&c.opts.ChatDuration, "chat-duration", 10*time.Second, "chat loads: how long each node sends")
	fs.DurationVar(&c.opts.RampStep, "ramp-step", 5*time.Second, "ramp: how long each step sends")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))
	}
	var err error
	if c.brokers, err = ParseBrokers(*brokers); err != nil {
		return c, err
	}
	if c.opts.RampRates, err = parseRates(*rates); err != nil {
		return c, err
	}
	if c.opts.PairsRounds < 1 {
		return c, fmt.Errorf("-pairs-rounds: %d must be at least 1", c.opts.PairsRounds)
	}
	if c.opts.Size < 200 || c.opts.PairsDuration <= 0 || c.opts.PairsWarmup < 0 || c.opts.ChatDuration <= 0 || c.opts.RampStep <= 0 {
		return c, errors.New("-size must be at least 200 and the durations positive")
	}
	if c.loads, err = SelectLoads(Loads(c.opts), *loads); err != nil {
		return c, err
	}
	c.command = cmp.Or(c.command, strings.TrimSpace("benchcompare "+strings.Join(args, " ")))
	return c, nil
}

// parseRates parses an increasing comma-separated list of positive rates.
func parseRates(list string) ([]float64, error) {
	var out []float64
	for _, s := range strings.Split(list, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v <= 0 || (len(out) > 0 && v <= out[len(out)-1]) {
			return nil, fmt.Errorf("-ramp-rates: %q is not an increasing list of positive rates", list)
		}
		out = append(out, v)
	}
	return out, nil
}

// run prepares the environment and runs every load against every broker,
// load by load, so one load's brokers run close together in time.
func run(ctx context.Context, c cmdLine, progress func(string, ...any)) (Report, error) {
	tmp, err := os.MkdirTemp("", "bench-compare-")
	if err != nil {
		return Report{}, fmt.Errorf("temp dir: %w", err)
	}
	defer func() {
		if c.keep {
			progress("kept the scratch directory %s", tmp)
			return
		}
		if err := os.RemoveAll(tmp); err != nil {
			progress("remove %s: %v", tmp, err)
		}
	}()
	env := &Env{Tmp: tmp, Progress: progress}
	if slices.Contains(c.brokers, Mosquitto) {
		if env.MosquittoBin, env.MosquittoVersion, err = findMosquitto(ctx, progress); err != nil {
			return Report{}, err
		}
	}
	progress("building the programs")
	if env.Bins, err = buildBins(ctx, filepath.Join(tmp, "bin"), c.bin); err != nil {
		return Report{}, err
	}
	rep := Report{Date: time.Now().UTC().Format(time.RFC3339), Command: c.command, Brokers: c.brokers,
		Machine: Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
			Mosquitto: env.MosquittoVersion}}
	for _, l := range c.loads {
		rep.Loads = append(rep.Loads, l.Name)
		rep.LoadInfo = append(rep.LoadInfo, l.Describe())
		results, err := runRounds(ctx, env, l, c.brokers)
		if err != nil {
			return Report{}, err
		}
		rep.Results = append(rep.Results, results...)
	}
	return rep, nil
}
