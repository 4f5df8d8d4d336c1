package chatnode

import (
	"fmt"
	"math"
)

// validate checks the load shape, one line per problem: a negative or
// non-finite value would otherwise run a load nobody asked for (a negative
// -rate runs closed loop, a negative -count runs forever).
func (bp benchParams) validate(maxPayload int) error {
	return problems(
		problem{bp.count < 0, fmt.Sprintf("-count: %d cannot be negative", bp.count)},
		problem{bp.count > 0 && bp.duration > 0, "-count and -duration: give one, not both"},
		problem{bp.duration < 0, fmt.Sprintf("-duration: %s cannot be negative", bp.duration)},
		problem{bp.size < 0, fmt.Sprintf("-size: %d cannot be negative", bp.size)},
		problem{bp.size >= 0 && bp.size > maxPayload, fmt.Sprintf("-size: %d is over -max-payload %d; every message would be refused", bp.size, maxPayload)},
		problem{math.IsNaN(bp.rate) || math.IsInf(bp.rate, 0) || bp.rate < 0, fmt.Sprintf("-rate: %g must be a number ≥ 0 (0: as fast as the window allows)", bp.rate)},
		problem{bp.expect < 0, fmt.Sprintf("-expect: %d cannot be negative", bp.expect)},
		problem{bp.peers < 1, fmt.Sprintf("-peers: %d must be at least 1 (this node)", bp.peers)},
		problem{bp.linger < 0, fmt.Sprintf("-linger: %s cannot be negative", bp.linger)},
		problem{bp.startTimeout <= 0, fmt.Sprintf("-start-timeout: %s must be positive", bp.startTimeout)},
	)
}
