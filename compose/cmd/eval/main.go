// Command eval runs distchat's evaluation scenarios against the compose
// evaluation deployment. `make eval` builds the images, runs it, then runs
// the analysis over the logs it collects.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/distchat/distchat/compose/eval"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := eval.Main(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
