// Package netwait waits for a TCP listener to come up. The broker's Start
// needs it (Mochi binds its WebSocket listener in a goroutine), and so do the
// tools that start brokers as child processes (bench-nodes, bench-compare):
// a listener is ready when it accepts a connection, not when its process
// has started.
package netwait

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Listening returns once addr accepts a TCP connection (which it closes at
// once). It gives up when ctx ends, or as soon as gone (may be nil) reports
// an error, such as the child process meant to listen having exited, and
// returns that error.
func Listening(ctx context.Context, addr string, gone func() error) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		d := net.Dialer{Timeout: time.Second}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn.Close()
		}
		if gone != nil {
			if gerr := gone(); gerr != nil {
				return gerr
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listening on %s (%w): %w", addr, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
