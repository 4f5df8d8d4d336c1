// Package percentile is distchat's one definition of a percentile, so that
// bench nodes, bench-compare and the analysis mean the same p99: the
// nearest rank, the smallest sample with at least p of all samples at or
// below it, never an interpolation. Percentiles are given in per mille (p99
// is 990, p99.9 is 999) and ranks are computed in integers, because a float
// 99.9/100·1000 is 999.0000000000001, whose ceiling is one rank too far.
package percentile

// Rank is the 1-based nearest rank of the perMille-th per mille of n
// samples: ceil(perMille·n/1000), at least 1 and at most n (0 when n is 0).
func Rank(perMille, n int64) int64 {
	if n <= 0 {
		return 0
	}
	return min(max((perMille*n+999)/1000, 1), n)
}

// Of is the nearest-rank perMille-th per mille of sorted (ascending); the
// zero value when sorted is empty.
func Of[T any](sorted []T, perMille int64) (v T) {
	if len(sorted) > 0 {
		v = sorted[Rank(perMille, int64(len(sorted)))-1]
	}
	return v
}
