package analysis

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The longest wait is the same whatever order the deliveries come in, and
// equals the largest gap of the sorted stamps, the window's edges included,
// for narrow and wide (clamped) buckets alike.
func TestWaitsLongestIsExactInAnyOrder(t *testing.T) {
	const s = int64(1e9)
	tests := []struct {
		name             string
		from, to         int64
		stamps           []int64
		start, end, want int64
	}{
		{"gap between deliveries", 0, 10 * s, []int64{1e6, 2e6, 4*s + 5e6, 9 * s, 10 * s}, 0, 10 * s, 5*s - 5e6},
		{"gap at the start", 0, 10 * s, []int64{3 * s, 4 * s, 5 * s, 6 * s, 7 * s, 8 * s, 9 * s, 10 * s}, 0, 10 * s, 3 * s},
		{"gap at the end", 0, 10 * s, []int64{1e8, 2e8, 3e8}, 0, 10 * s, 10*s - 3e8},
		{"nothing received", 0, 10 * s, nil, 2 * s, 5 * s, 3 * s},
		{"stamps outside the window ignored", s, 3 * s, []int64{0, s + 1, 2 * s, 3 * s, 9 * s}, s, 3 * s, s},
		{"span clipped to the node", 0, 10 * s, []int64{5 * s, 6 * s}, 4 * s, 6 * s, s},
		{"wide buckets over a day", 0, 86400 * s, []int64{10 * s, 10*s + 7, 50000 * s, 86400 * s}, 0, 86400 * s, 49990*s - 7},
		{"several in one bucket", 0, s, []int64{1, 2, 3, 50e6, 50e6 + 1, 999999999}, 0, s, 999999999 - 50e6 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for round := range 5 {
				stamps := slices.Clone(tt.stamps)
				rand.Shuffle(len(stamps), func(i, j int) { stamps[i], stamps[j] = stamps[j], stamps[i] })
				var w waits
				for _, ns := range stamps {
					w.add(ns, tt.from, tt.to)
				}
				if got := w.longest(tt.start, tt.end); got != tt.want {
					t.Fatalf("round %d (order %v): longest %d, want %d", round, stamps, got, tt.want)
				}
			}
		})
	}
}

// A window whose span overflows int64 (bogus stamps) measures nothing
// rather than allocating or panicking.
func TestWaitsOverflowingWindow(t *testing.T) {
	var w waits
	w.add(0, -1<<62, 1<<62)
	if w.lo != nil {
		t.Fatalf("allocated %d buckets for an overflowing window", len(w.lo))
	}
	if got := w.longest(0, 10); got != 10 {
		t.Fatalf("longest %d, want the whole span 10", got)
	}
}
