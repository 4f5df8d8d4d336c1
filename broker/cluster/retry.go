package cluster

import (
	"context"
	"fmt"
	"time"
)

// retry calls f, each call bounded by a few seconds, until it succeeds or
// ReadyTimeout passes: right after an election JetStream may not answer
// a request, or answer that it cannot place a stream yet, and a lost
// request must not hold a broker's start for the whole timeout.
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
