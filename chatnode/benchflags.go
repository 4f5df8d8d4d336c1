package chatnode

import (
	"errors"
	"fmt"
	"math"
)

// validate checks the load shape, one line per problem: a negative or
// non-finite value would otherwise run a load nobody asked for (a negative
// -rate runs closed loop, a negative -count runs forever).
func (bp benchParams) validate(maxPayload int) error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case bp.count < 0:
		add("-count: %d cannot be negative", bp.count)
	case bp.count > 0 && bp.duration > 0:
		add("-count and -duration: give one, not both")
	}
	if bp.duration < 0 {
		add("-duration: %s cannot be negative", bp.duration)
	}
	switch {
	case bp.size < 0:
		add("-size: %d cannot be negative", bp.size)
	case bp.size > maxPayload:
		add("-size: %d is over -max-payload %d; every message would be refused", bp.size, maxPayload)
	}
	if math.IsNaN(bp.rate) || math.IsInf(bp.rate, 0) || bp.rate < 0 {
		add("-rate: %g must be a number ≥ 0 (0: as fast as the window allows)", bp.rate)
	}
	if bp.expect < 0 {
		add("-expect: %d cannot be negative", bp.expect)
	}
	if bp.peers < 1 {
		add("-peers: %d must be at least 1 (this node)", bp.peers)
	}
	if bp.linger < 0 {
		add("-linger: %s cannot be negative", bp.linger)
	}
	if bp.startTimeout <= 0 {
		add("-start-timeout: %s must be positive", bp.startTimeout)
	}
	return errors.Join(errs...)
}
