package benchcompare

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/distchat/distchat/analysis/percentile"
)

// runRounds runs load l against every broker, l.Rounds times in turn, and
// returns each broker's middle round: a short closed loop moves by tens of
// percent with the machine's state, which each round's brokers share.
func runRounds(ctx context.Context, env *Env, l Load, brokers []string) ([]Result, error) {
	rounds := make(map[string][]Result, len(brokers))
	for round := 1; round <= l.Rounds; round++ {
		for _, b := range brokers {
			name := l.Name + " " + b
			if l.Rounds > 1 {
				name += fmt.Sprintf(" (round %d of %d)", round, l.Rounds)
			}
			env.Progress("%s: running", name)
			res := env.runLoad(ctx, l, b)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			switch {
			case res.Error != "":
				env.Progress("%s: failed: %s", name, oneLine(res.Error))
			case l.Kind == KindRamp:
				env.Progress("%s: zero-loss capacity %s msg/s", name, res.capacity())
			default:
				env.Progress("%s: %s", name, res.Line())
			}
			rounds[b] = append(rounds[b], res)
		}
	}
	out := make([]Result, 0, len(brokers))
	for _, b := range brokers {
		out = append(out, middleRound(rounds[b]))
	}
	return out, nil
}

// middleRound returns the result of the round with the median msg/s, with
// every round's rate in RoundsMsgPerS, or the first failed round's result.
func middleRound(rounds []Result) Result {
	for _, r := range rounds {
		if r.Error != "" {
			return r
		}
	}
	if len(rounds) == 0 {
		return Result{Error: "no rounds ran"}
	}
	rates := make([]float64, len(rounds))
	for i, r := range rounds {
		rates[i] = r.MsgPerS
	}
	sorted := slices.Clone(rounds)
	slices.SortStableFunc(sorted, func(a, b Result) int { return cmp.Compare(a.MsgPerS, b.MsgPerS) })
	mid := percentile.Of(sorted, 500) // the lower middle of an even count
	if len(rounds) > 1 {
		mid.RoundsMsgPerS = rates
	}
	return mid
}
