// Command baremochi is Mochi MQTT with nothing of distchat on top: every
// client allowed, the default capabilities, one TCP listener, no persistence.
// bench-compare runs it beside Mosquitto and the distchat broker, so the
// comparison separates what Mochi itself costs from what distchat adds.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "baremochi:", err)
		os.Exit(1)
	}
}

// run serves MQTT on -tcp until ctx is cancelled.
func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("baremochi", flag.ContinueOnError)
	addr := fs.String("tcp", "127.0.0.1:1883", "MQTT TCP listener `host:port`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	srv := mqtt.New(&mqtt.Options{
		Capabilities: mqtt.NewDefaultServerCapabilities(),
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return fmt.Errorf("add allow hook: %w", err)
	}
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: *addr})); err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	if err := srv.Serve(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	<-ctx.Done()
	if err := srv.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}
