// Package lograte bounds how often one kind of log line is written, so a
// flood (refused connections, refused messages, throttled requests) does
// not become a flood of log lines: a burst of lines goes through, then one
// per interval, and each line that goes through says how many were held
// back before it. The broker and its room log share it.
package lograte

import (
	"sync"
	"time"
)

// Limiter is a token bucket for log lines. Make one with New.
type Limiter struct {
	now   func() time.Time
	burst float64
	every time.Duration

	mu         sync.Mutex // guards tokens, last, suppressed; held for no I/O
	tokens     float64
	last       time.Time
	suppressed int64
}

// New lets burst lines through at once, then one per every; now is the
// clock (time.Now outside tests).
func New(now func() time.Time, burst int, every time.Duration) *Limiter {
	return &Limiter{now: now, burst: float64(burst), every: every, tokens: float64(burst)}
}

// Allow reports whether a line may be written now and, if so, how many
// lines were held back since the last one written.
func (r *Limiter) Allow() (ok bool, suppressed int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if !r.last.IsZero() {
		r.tokens = min(r.burst, r.tokens+float64(now.Sub(r.last))/float64(r.every))
	}
	r.last = now
	if r.tokens < 1 {
		r.suppressed++
		return false, 0
	}
	r.tokens--
	suppressed, r.suppressed = r.suppressed, 0
	return true, suppressed
}
