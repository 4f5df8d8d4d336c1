package analysis

import (
	"math"
	"slices"
)

// waits keeps the earliest and latest receive stamp of one node in each
// bucket of the measured window: the longest wait comes out of them
// exactly, whatever the order of the lines, in bounded memory.
type waits struct {
	from, width int64
	lo, hi      []int64 // per bucket; lo is math.MaxInt64 while it holds none
}

// waitBucket is the bucket width; a window longer than maxWaitBuckets of
// them gets wider buckets.
const (
	waitBucket     = int64(100e6) // 100 ms
	maxWaitBuckets = 1 << 14
)

// add notes a first delivery received at ns within [from, to].
func (w *waits) add(ns, from, to int64) {
	if ns < from || ns > to {
		return
	}
	if w.lo == nil {
		span := to - from + 1
		if span <= 0 {
			return // stamps so far apart that the span overflows: nothing to measure
		}
		w.from, w.width = from, max(waitBucket, span/maxWaitBuckets+1)
		n := (span + w.width - 1) / w.width
		w.lo, w.hi = slices.Repeat([]int64{math.MaxInt64}, int(n)), make([]int64, n)
	}
	i := (ns - w.from) / w.width
	w.lo[i] = min(w.lo[i], ns)
	w.hi[i] = max(w.hi[i], ns)
}

// longest is the longest time in [start, end] without a delivery (0 when
// the span is empty).
func (w *waits) longest(start, end int64) int64 {
	if end <= start {
		return 0
	}
	prev, gap := start, int64(0)
	for i, lo := range w.lo {
		if lo == math.MaxInt64 {
			continue
		}
		if lo > end {
			break
		}
		gap = max(gap, lo-prev)
		prev = max(prev, w.hi[i])
	}
	return max(gap, end-prev)
}

// longestWait is node n's longest wait for a delivery in ms, within the
// measured window, from its first subscription to its last line: a node
// that joins late or ends early has not been waiting.
func (s *scenario) longestWait(n int32) float64 {
	start := int64(math.MaxInt64)
	for key, ivs := range s.member {
		if key.node == n {
			for _, iv := range ivs {
				start = min(start, iv.from)
			}
		}
	}
	if start == math.MaxInt64 {
		start = s.winFrom
	}
	start = max(start, s.winFrom)
	end := min(s.winTo, s.acc[n].lastTS)
	return round3(float64(s.acc[n].waits.longest(start, end)) / 1e6)
}
