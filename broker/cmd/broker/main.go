// Command broker runs a distchat broker node; see broker -h.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/distchat/distchat/broker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := broker.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
