package session

import "time"

// clock is the pipeline's time source (hold-back, gap_wait, retries, state
// saves), so tests drive time by hand (fakeClock). NewTicker returns the
// ticks and a function that stops them.
type clock interface {
	Now() time.Time
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

// wallClock is the real clock.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
