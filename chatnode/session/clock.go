package session

import "time"

// clock is the pipeline's time source. Hold-back, gap_wait, request retries
// and the state file's save interval are all measured on it, so tests drive
// time by hand instead of waiting for the wall clock (see fakeClock in the
// tests).
type clock interface {
	Now() time.Time
	// NewTicker returns a channel that receives the time every d, and a
	// function that stops it.
	NewTicker(d time.Duration) (<-chan time.Time, func())
}

// wallClock is the real clock.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) NewTicker(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}
