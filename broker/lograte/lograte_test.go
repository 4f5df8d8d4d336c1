package lograte

import (
	"testing"
	"time"
)

// The log limiter lets a burst through, then one line per interval, each
// saying how many were held back.
func TestLogLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	r := New(func() time.Time { return now }, 3, time.Second)
	type result struct {
		ok   bool
		held int64
	}
	var got []result
	for _, advance := range []time.Duration{0, 0, 0, 0, 0, 500 * time.Millisecond, 500 * time.Millisecond, 0, 10 * time.Second} {
		now = now.Add(advance)
		ok, held := r.Allow()
		got = append(got, result{ok, held})
	}
	want := []result{{true, 0}, {true, 0}, {true, 0}, {false, 0}, {false, 0}, {false, 0}, {true, 3}, {false, 0}, {true, 1}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: allow = %v, want %v", i, got[i], want[i])
		}
	}
}
