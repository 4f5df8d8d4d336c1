package analysis

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// genMain writes synthetic node logs in the nodes' line format, so that the
// analysis' speed and memory can be measured at any size. It stops when ctx
// ends (exit code 130), leaving the logs written so far.
func genMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("analysis gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "synthetic-logs", "`dir`ectory for the node logs")
	lines := fs.Int64("lines", 1_000_000, "about how many log lines to write in all")
	nodes := fs.Int("nodes", 3, "nodes (each sends and receives everything)")
	run := fs.String("run", "synthetic", "run label")
	loss := fs.Float64("loss", 0.001, "fraction of deliveries left out (shows up as lost)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *nodes < 1 || *nodes > 64 || *lines < 1 {
		fmt.Fprintln(stderr, "analysis gen: -nodes must be 1..64 and -lines positive")
		return 2
	}
	if err := generate(ctx, *out, *run, *nodes, *lines, *loss); err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "analysis gen: interrupted: the logs in %s are incomplete\n", *out)
			return exitInterrupted
		}
		fmt.Fprintln(stderr, "analysis gen:", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "wrote about %d lines for %d nodes into %s\n", *lines, *nodes, *out)
	return 0
}

func generate(ctx context.Context, dir, run string, nodes int, lines int64, loss float64) error {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	ws := make([]*bufio.Writer, nodes)
	fs := make([]*os.File, nodes)
	name := func(i int) string { return "n" + strconv.Itoa(i) }
	const t0 = int64(1_800_000_000_000_000_000)
	for i := range ws {
		f, err := os.Create(filepath.Join(dir, name(i)+".log"))
		if err != nil {
			return fmt.Errorf("create log: %w", err)
		}
		fs[i], ws[i] = f, bufio.NewWriterSize(f, 1<<20)
		fmt.Fprintf(ws[i], `{"event":"subscribed","level":"info","msg":"subscribed","node":"%s","room":"load","run":"%s","time":"x","ts_ns":%d}`+"\n", name(i), run, t0-1e9)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := lines / int64(nodes+1)
	var err error
	for k := int64(0); k < msgs && err == nil; k++ {
		if k&0xfff == 0 {
			err = ctx.Err()
		}
		from := int(k % int64(nodes))
		seq := k/int64(nodes) + 1
		sent := t0 + k*100_000                                            // 10k msg/s in all
		id := run + "-" + name(from) + "-b-" + strconv.FormatInt(seq, 10) // unique per run
		fmt.Fprintf(ws[from], `{"ack_us":%d,"bytes":256,"event":"sent","id":"%s","level":"info","msg":"sent","node":"%s","room":"load","run":"%s","sent_ns":%d,"seq":%d,"time":"x","ts_ns":%d}`+"\n",
			200+rng.IntN(800), id, name(from), run, sent, seq, sent)
		for r := 0; r < nodes; r++ {
			if rng.Float64() < loss {
				continue
			}
			lat := int64(300_000 + rng.ExpFloat64()*400_000)
			fmt.Fprintf(ws[r], `{"boot":1,"bytes":256,"duplicate":false,"event":"received","from":"%s","id":"%s","latency_us":%d,"level":"info","msg":"received","node":"%s","recv_ns":%d,"room":"load","room_seq":%d,"run":"%s","sent_ns":%d,"seq":%d,"time":"x","ts_ns":%d,"via":"live"}`+"\n",
				name(from), id, lat/1000, name(r), sent+lat, k+1, run, sent, seq, sent+lat)
		}
	}
	errs := []error{err}
	for i := range ws {
		errs = append(errs, ws[i].Flush(), fs[i].Close())
	}
	return errors.Join(errs...)
}
