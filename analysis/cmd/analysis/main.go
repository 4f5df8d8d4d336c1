// Command analysis turns distchat node logs into figures and plots; see analysis -h.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/distchat/distchat/analysis"
)

func main() {
	os.Exit(run())
}

// run is the command without os.Exit, so its deferred calls run. The first
// SIGINT or SIGTERM ends the context (the analysis stops, cleans up, and
// exits with 130); after it the signals have their default effect again,
// so a second Ctrl-C stops a cleanup that hangs.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()
	return analysis.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
