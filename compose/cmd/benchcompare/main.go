// Command benchcompare runs the same loads against Mosquitto and the
// distchat broker and writes the side-by-side report; see benchcompare -h
// and docs/benchmarks.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/distchat/distchat/compose/benchcompare"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := benchcompare.Main(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}
