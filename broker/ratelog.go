package broker

import (
	"sync"
	"time"
)

// logLimiter bounds how often one kind of log line is written, so a flood
// of refused or idle connections does not become a flood of log lines: a
// burst of lines goes through, then one per interval, and each line that
// goes through says how many were held back before it.
type logLimiter struct {
	now   func() time.Time
	burst float64
	every time.Duration

	mu         sync.Mutex // guards tokens, last, suppressed; held for no I/O
	tokens     float64
	last       time.Time
	suppressed int64
}

func newLogLimiter(now func() time.Time, burst int, every time.Duration) *logLimiter {
	return &logLimiter{now: now, burst: float64(burst), every: every, tokens: float64(burst)}
}

// allow reports whether a line may be written now and, if so, how many
// lines were held back since the last one written.
func (r *logLimiter) allow() (ok bool, suppressed int64) {
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
