package web

import (
	"maps"
	"sync"
	"time"
)

// bucket is a token bucket: burst tokens at most, refilled at rate per
// second. It is not safe for concurrent use; its owner locks it.
type bucket struct {
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take spends one token if there is one.
func (b *bucket) take(now time.Time) bool {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(b.burst, b.tokens+el*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// full reports whether the bucket has refilled completely (it then carries
// no history and can be forgotten).
func (b *bucket) full(now time.Time) bool {
	return b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.burst
}

// limiterSet keeps one bucket per key (a client address), forgetting the
// full ones when it grows, so the set stays bounded by the active keys.
type limiterSet struct {
	rate  float64
	burst int
	now   func() time.Time

	mu      sync.Mutex // guards buckets; no lock is taken under it
	buckets map[string]*bucket
}

// maxLimiterKeys is the size past which full buckets are dropped.
const maxLimiterKeys = 10000

// allow spends one of key's tokens if it has one.
func (l *limiterSet) allow(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxLimiterKeys {
			maps.DeleteFunc(l.buckets, func(_ string, o *bucket) bool { return o.full(now) })
		}
		b = newBucket(l.rate, l.burst, now)
		l.buckets[key] = b
	}
	return b.take(now)
}
