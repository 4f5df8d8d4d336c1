// Command benchnodes measures what chat nodes cost in CPU per delivered
// message: it starts a broker (memory mode, on a free loopback port) and N
// `chatnode bench` processes in one room, waits for them, and prints the
// nodes' summed user+system CPU time per delivery next to the broker's, and
// the latency percentiles from the nodes' summary lines. It runs the built
// binaries, so the figure includes everything a real node process does
// (logging, MQTT writes, the runtime).
//
//	go build -o bin/ ./broker/cmd/broker ./chatnode/cmd/chatnode
//	go run ./chatnode/cmd/benchnodes -bin bin -nodes 10 -rate 100 -duration 10s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == pahoNodeArg {
		return runPahoNode(ctx, args[1:], stdout, stderr)
	}
	var p params
	fs := flag.NewFlagSet("benchnodes", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&p.bin, "bin", "bin", "`dir` holding the broker and chatnode binaries")
	fs.IntVar(&p.nodes, "nodes", 10, "chat nodes, all in one room")
	fs.Float64Var(&p.rate, "rate", 100, "messages per second each node sends")
	fs.DurationVar(&p.duration, "duration", 10e9, "how `long` each node sends")
	fs.IntVar(&p.size, "size", 256, "message size in `bytes`")
	fs.StringVar(&p.dir, "dir", "", "`dir` for the nodes' logs (default: a temporary directory, removed after)")
	fs.StringVar(&p.cpuprofile, "cpuprofile", "", "write the first node's CPU profile to `file`")
	fs.StringVar(&p.client, "client", "chatnode", "the nodes: chatnode (`chatnode bench`), or paho: the floor under a chat node, bare paho\n"+
		"clients on the node's connection sending and receiving the same load with no chat work at all")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if err := p.validate(); err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "benchnodes: %s\n", line)
		}
		return 2
	}
	res, err := measure(ctx, p)
	if err != nil {
		fmt.Fprintf(stderr, "benchnodes: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, res)
	return 0
}

// validate refuses a load that cannot be run: each problem on its own line.
func (p params) validate() error {
	var errs []error
	if p.nodes < 1 {
		errs = append(errs, fmt.Errorf("-nodes: %d must be at least 1", p.nodes))
	}
	if math.IsNaN(p.rate) || math.IsInf(p.rate, 0) || p.rate <= 0 {
		errs = append(errs, fmt.Errorf("-rate: %g must be a positive number", p.rate))
	}
	if p.duration <= 0 {
		errs = append(errs, fmt.Errorf("-duration: %s must be positive", p.duration))
	}
	if p.client != "chatnode" && p.client != "paho" {
		errs = append(errs, fmt.Errorf("-client: %q must be chatnode or paho", p.client))
	}
	if p.client == "paho" && p.cpuprofile != "" {
		errs = append(errs, errors.New("-cpuprofile: only with -client chatnode"))
	}
	if p.size < 0 {
		errs = append(errs, fmt.Errorf("-size: %d cannot be negative", p.size))
	}
	return errors.Join(errs...)
}
