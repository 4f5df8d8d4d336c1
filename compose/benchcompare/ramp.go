package benchcompare

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
)

// rampP99LimitMS is the p99 latency a ramp step must stay under to pass.
const rampP99LimitMS = 100

// RampStep is one rate of a ramp.
type RampStep struct {
	RatePerNode float64 `json:"rate_per_node"` // messages/s each node sends
	TotalRate   float64 `json:"total_rate"`    // all nodes together
	Figures
	// Passed is zero loss with p99 under rampP99LimitMS.
	Passed bool   `json:"passed"`
	Error  string `json:"error,omitempty"`
}

// runRamp runs the chat load at each rate on a fresh broker until a step
// fails; the figures are the last passing step's, with MsgPerS its total
// rate: the zero-loss capacity.
func (e *Env) runRamp(ctx context.Context, l Load, broker, dir string) (Result, error) {
	res := Result{Load: l.Name, Broker: broker}
	for _, rate := range l.Rates {
		cfg := l.Chat
		cfg.Rate = rate
		step := RampStep{RatePerNode: rate, TotalRate: rate * float64(cfg.Nodes)}
		sdir := filepath.Join(dir, "rate-"+strconv.FormatFloat(rate, 'f', -1, 64))
		label := fmt.Sprintf("%s-%s-%g", l.Name, broker, rate)
		fig, err := e.withBroker(ctx, broker, sdir, func(url string) (measured, error) {
			return e.runChat(ctx, url, sdir, label, cfg)
		})
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			step.Error = err.Error()
		}
		step.Figures = fig
		step.Passed = err == nil && fig.Loss == 0 && fig.P99MS <= rampP99LimitMS
		res.Steps = append(res.Steps, step)
		e.Progress("%s %s: %g msg/s per node (%g in all): %s%s", l.Name, broker, rate, step.TotalRate,
			fig.Line(), passWord(step))
		if !step.Passed {
			return res, nil
		}
		res.Figures = fig
		res.MsgPerS = step.TotalRate
	}
	res.AtLeast = len(res.Steps) > 0
	return res, nil
}

func passWord(s RampStep) string {
	switch {
	case s.Error != "":
		return " → failed: " + s.Error
	case s.Passed:
		return " → pass"
	case s.Loss > 0:
		return " → loss, stop"
	default:
		return " → p99 over 100 ms, stop"
	}
}

// capacity is the ramp's zero-loss capacity as text ("≥ N": every step passed).
func (r Result) capacity() string {
	c := strconv.FormatFloat(r.MsgPerS, 'f', -1, 64)
	if r.AtLeast {
		return "≥ " + c
	}
	return c
}
