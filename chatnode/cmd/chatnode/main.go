// Command chatnode is the distchat chat node; see package chatnode.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/chatnode"
)

func main() {
	// paho's own errors go into the node's JSON log; its debug chatter stays off.
	mqtt.ERROR, mqtt.CRITICAL = chatnode.PahoLoggers()
	if os.Getenv("GOMAXPROCS") == "" && chatnode.OneProc(os.Args[1:]) {
		runtime.GOMAXPROCS(1) // see OneProc; GOMAXPROCS in the environment still decides
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := chatnode.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
