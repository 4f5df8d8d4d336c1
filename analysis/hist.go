package analysis

import (
	"math/bits"

	"github.com/distchat/distchat/analysis/percentile"
)

// hist is a log-linear histogram of latencies in whole microseconds, so that
// percentiles need memory per distinct magnitude, not per delivery (the
// analysis must stay bounded on logs of any size).
//
// Values below 2·histSub µs (2.048 ms) each have a bucket of their own and
// come back exact. Above, every power of two is cut into histSub equal
// buckets, so a bucket is less than 1/histSub (0.098%) of its value wide. A
// percentile reports the smallest sample of its bucket: a real sample, at
// most 0.098% below the exact nearest-rank value (exact when the bucket
// holds one distinct value). Min, max, mean and counts are exact.
type hist struct {
	n        int64
	sum      float64
	min, max int32
	// octaves[0] holds values 0 .. 2·histSub-1 one by one; octaves[k] for
	// k ≥ 1 the values 2^(k+histBits) .. 2^(k+histBits+1)-1 in histSub
	// buckets. Octaves are allocated on first use.
	octaves [32 - histBits]*octave
}

// octave is the buckets of one power of two: counts, and each bucket's
// smallest sample.
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
	oct, idx := bucketOf(v)
	h.octave(oct).put(idx, 1, v)
}

// merge adds o's counts to h.
func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	h.note(o.n, o.sum, o.min, o.max)
	for k, ob := range o.octaves {
		if ob == nil {
			continue
		}
		hb := h.octave(k)
		for i, c := range ob.count {
			if c > 0 {
				hb.put(i, c, ob.low[i])
			}
		}
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

// octave returns h's octave k, allocating it on first use.
func (h *hist) octave(k int) *octave {
	if h.octaves[k] == nil {
		size := histSub
		if k == 0 {
			size = 2 * histSub
		}
		h.octaves[k] = &octave{count: make([]int64, size), low: make([]int32, size)}
	}
	return h.octaves[k]
}

// put adds c samples, the smallest low, to bucket i.
func (o *octave) put(i int, c int64, low int32) {
	if o.count[i] == 0 || low < o.low[i] {
		o.low[i] = low
	}
	o.count[i] += c
}

// each calls fn for every non-empty bucket in increasing order with the
// bucket's smallest sample and its count.
func (h *hist) each(fn func(v int32, count int64)) {
	for _, o := range h.octaves {
		if o == nil {
			continue
		}
		for i, c := range o.count {
			if c > 0 {
				fn(o.low[i], c)
			}
		}
	}
}

// latency summarises h in milliseconds with nearest-rank percentiles (the
// ranks of package percentile, which bench nodes and bench-compare use on
// their exact samples).
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
	out := h.max
	done := false
	h.each(func(v int32, c int64) {
		seen += c
		if !done && seen >= r {
			out, done = v, true
		}
	})
	return out
}
