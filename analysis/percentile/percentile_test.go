package percentile

import (
	"testing"
	"time"
)

// TestRank: nearest rank in integers; p99.9 of 1,000 samples is the 999th
// (a float ceiling of 99.9/100·1000 gives the 1000th).
func TestRank(t *testing.T) {
	for _, tt := range []struct{ perMille, n, want int64 }{
		{999, 1000, 999}, {999, 1001, 1000}, {500, 1, 1}, {500, 2, 1}, {500, 3, 2}, {990, 100, 99}, {1000, 7, 7}, {1, 10, 1},
		{500, 0, 0},
	} {
		if got := Rank(tt.perMille, tt.n); got != tt.want {
			t.Errorf("Rank(%d‰ of %d) = %d, want %d", tt.perMille, tt.n, got, tt.want)
		}
	}
}

func TestOf(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	upTo := func(n int) []time.Duration {
		v := make([]int, n)
		for i := range v {
			v[i] = i + 1
		}
		return ms(v...)
	}
	tests := []struct {
		name     string
		sorted   []time.Duration
		perMille int64
		want     time.Duration
	}{
		{"empty", nil, 500, 0},
		{"one", ms(7), 990, 7 * time.Millisecond},
		{"median of four is the second (nearest rank)", ms(1, 2, 3, 4), 500, 2 * time.Millisecond},
		{"p99 of 100", upTo(100), 990, 99 * time.Millisecond},
		{"p50 of 100", upTo(100), 500, 50 * time.Millisecond},
		{"p100 is the max", ms(1, 5, 9), 1000, 9 * time.Millisecond},
		{"tiny p is the min", ms(1, 5, 9), 1, time.Millisecond},
		{"p99 of 160 is the 159th (the ceiling of 158.4, not its rounding)", upTo(160), 990, 159 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.sorted, tt.perMille); got != tt.want {
				t.Errorf("Of(%v, %d‰) = %v, want %v", tt.sorted, tt.perMille, got, tt.want)
			}
		})
	}
}
