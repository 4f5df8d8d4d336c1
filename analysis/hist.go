package analysis

import (
	"iter"
	"math/bits"

	"github.com/distchat/distchat/analysis/percentile"
)

// hist is a log-linear histogram of latencies in whole microseconds, so that
// percentiles need memory per distinct magnitude, not per delivery.
//
// Values below 2·histSub µs (2.048 ms) each have a bucket of their own.
// Above, every power of two is cut into histSub equal buckets, and a
// percentile reports the smallest sample of its bucket: a real sample, at
// most 0.098% below the exact nearest-rank value. Min, max, mean and counts
// are exact.
type hist struct {
	n        int64
	sum      float64
	min, max int32
	// octaves[0] holds values 0 .. 2·histSub-1 one by one; octaves[k] for
	// k ≥ 1 the values 2^(k+histBits) .. 2^(k+histBits+1)-1 in histSub
	// buckets. Octaves are allocated on first use.
	octaves [32 - histBits]*octave
}

// octave is the buckets of one power of two: counts and smallest samples.
type octave struct {
	count []int64
	low   []int32
}

const (
	histBits = 10
	histSub  = 1 << histBits
)

// bucketOf returns the octave and bucket of v ≥ 0.
func bucketOf(v int32) (oct, idx int) {
	if v < 2*histSub {
		return 0, int(v)
	}
	e := bits.Len32(uint32(v)) - 1 // 2^e ≤ v < 2^(e+1), e ≥ histBits+1
	oct = e - histBits
	return oct, int(v>>(e-histBits)) - histSub
}

// add counts one latency; negative values count as 0.
func (h *hist) add(v int32) {
	v = max(v, 0)
	h.note(1, float64(v), v, v)
	h.put(v, 1)
}

// merge adds o's counts to h.
func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	h.note(o.n, o.sum, o.min, o.max)
	for v, c := range o.buckets() {
		h.put(v, c) // v is in its bucket, as every sample
	}
}

// note adds n samples summing to sum, between lo and hi, to h's totals.
func (h *hist) note(n int64, sum float64, lo, hi int32) {
	if h.n == 0 || lo < h.min {
		h.min = lo
	}
	h.max = max(h.max, hi)
	h.n += n
	h.sum += sum
}

// put adds c samples, the smallest v, to v's bucket.
func (h *hist) put(v int32, c int64) {
	k, i := bucketOf(v)
	if h.octaves[k] == nil {
		size := histSub
		if k == 0 {
			size = 2 * histSub
		}
		h.octaves[k] = &octave{count: make([]int64, size), low: make([]int32, size)}
	}
	o := h.octaves[k]
	if o.count[i] == 0 || v < o.low[i] {
		o.low[i] = v
	}
	o.count[i] += c
}

// buckets yields every non-empty bucket in increasing order: its smallest
// sample and its count.
func (h *hist) buckets() iter.Seq2[int32, int64] {
	return func(yield func(int32, int64) bool) {
		for _, o := range h.octaves {
			if o == nil {
				continue
			}
			for i, c := range o.count {
				if c > 0 && !yield(o.low[i], c) {
					return
				}
			}
		}
	}
}

// latency summarises h in milliseconds with package percentile's ranks,
// which bench nodes and bench-compare use on their exact samples.
func (h *hist) latency() Latency {
	if h.n == 0 {
		return Latency{}
	}
	q := func(perMille int64) float64 { return ms(h.quantile(perMille)) }
	return Latency{N: int(h.n), Min: ms(h.min), Mean: round3(h.sum / float64(h.n) / 1000), P50: q(500), P90: q(900),
		P95: q(950), P99: q(990), P999: q(999), Max: ms(h.max)}
}

// quantile returns the nearest-rank value at the perMille-th per mille of h
// (its max when empty).
func (h *hist) quantile(perMille int64) int32 {
	r := percentile.Rank(perMille, h.n)
	var seen int64
	for v, c := range h.buckets() {
		if seen += c; seen >= r {
			return v
		}
	}
	return h.max
}
