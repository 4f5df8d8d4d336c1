package config

import "fmt"

// Bounds on the bytes the broker keeps for unacknowledged deliveries.
const (
	// DefaultMaxInflightBytes is one client's bound: 16 MiB is thousands of
	// chat messages, far more than a node that reads keeps unacknowledged.
	DefaultMaxInflightBytes = 16 << 20
	// DefaultMaxInflightBytesTotal is the bound over all clients, so many
	// slow clients together cannot take the machine's memory either.
	DefaultMaxInflightBytesTotal = 1 << 30
)

// validateInflightBytes checks max_inflight_bytes and max_inflight_bytes_total.
func (l Limits) validateInflightBytes() []error {
	var errs []error
	if l.MaxInflightBytes < 0 {
		errs = append(errs, fmt.Errorf("limits.max_inflight_bytes: %d cannot be negative (0 means unlimited)", l.MaxInflightBytes))
	}
	if l.MaxInflightBytesTotal < 0 {
		errs = append(errs, fmt.Errorf("limits.max_inflight_bytes_total: %d cannot be negative (0 means unlimited)", l.MaxInflightBytesTotal))
	}
	return errs
}
