package cluster

import "time"

// consumerStopGrace bounds a wait for a consumer or watcher to stop. While
// an ordered consumer starts over on another broker (nats.go retries for
// seconds when no majority answers, as on the last broker of a cluster to
// stop), its Stop waits for that; it then ends when the node's connection
// closes, and what it still delivers is ignored.
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
