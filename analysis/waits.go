package analysis

import "math"

// waits keeps when one node received while the load ran: the earliest and
// the latest receive stamp in each bucket of the measured window. The
// longest wait between deliveries comes out of them exactly (no gap inside
// a bucket is longer than the bucket) whatever the order the lines are
// read in, in memory bounded by maxWaitBuckets per node.
type waits struct {
	from, width int64
	lo, hi      []int64 // per bucket; lo is math.MaxInt64 while it holds none
}

// waitBucket is the bucket width for a window of up to maxWaitBuckets
// of them; a longer window gets wider buckets.
const (
	waitBucket     = int64(100e6) // 100 ms
	maxWaitBuckets = 1 << 14
)

// add notes a first delivery received at ns, if it falls in the measured
// window [from, to].
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
		w.lo, w.hi = make([]int64, n), make([]int64, n)
		for i := range w.lo {
			w.lo[i] = math.MaxInt64
		}
	}
	i := (ns - w.from) / w.width
	w.lo[i] = min(w.lo[i], ns)
	w.hi[i] = max(w.hi[i], ns)
}

// longest is the longest time in [start, end] without a delivery: from
// start to the first delivery, between two deliveries, or from the last
// one to end. It is end-start when nothing came, 0 when the span is empty.
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

// longestWait is node n's longest wait for a delivery while the load ran:
// over the measured window, from the node's first subscription (a node
// that joins late has not been waiting) to its last line (nor has one
// whose log ends early), in milliseconds.
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
