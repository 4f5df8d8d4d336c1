// Command chatnode is the distchat chat node; see package chatnode.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/chatnode"
)

func main() {
	// paho's own errors go to stderr as plain lines; its debug chatter stays off.
	mqtt.ERROR = log.New(os.Stderr, "paho error: ", log.LstdFlags)
	mqtt.CRITICAL = log.New(os.Stderr, "paho critical: ", log.LstdFlags)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := chatnode.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
