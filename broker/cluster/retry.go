package cluster

import (
	"context"
	"fmt"
	"time"
)

// retry calls f, each call bounded by a few seconds, until it succeeds or
// ReadyTimeout passes: right after an election JetStream may not answer or
// place a stream yet, and one lost request must not hold a broker's start.
func retry(ctx context.Context, what string, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		actx, acancel := context.WithTimeout(ctx, 3*time.Second)
		err := f(actx)
		acancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		case <-tick.C:
		}
	}
}

// consumerStopGrace bounds a wait for a consumer or watcher to stop: one
// starting over (for seconds without a majority, as on the last broker to
// stop) ends when the node's connection closes, its deliveries ignored.
const consumerStopGrace = 500 * time.Millisecond

// stopWithin runs stop and reports whether it returned within grace; if
// not, it is left to finish on its own.
func stopWithin(grace time.Duration, stop func()) bool {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stop()
	}()
	select {
	case <-stopped:
		return true
	case <-time.After(grace):
		return false
	}
}
