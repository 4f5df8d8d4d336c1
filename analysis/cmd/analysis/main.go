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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := analysis.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
