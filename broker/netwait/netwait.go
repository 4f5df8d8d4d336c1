// Package netwait waits for a TCP listener to come up, and finds a free
// port for one. The broker's Start needs the wait (Mochi binds its WebSocket
// listener in a goroutine), and so do the tools that start brokers as child
// processes on free ports (bench-nodes, bench-compare): a listener is ready
// when it accepts a connection, not when its process has started.
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

// FreePort returns a loopback TCP port that was free a moment ago, for a
// child process to listen on.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	return port, nil
}
