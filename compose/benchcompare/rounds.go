package benchcompare

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/distchat/distchat/analysis/percentile"
)

// A closed-loop pair load is short and sensitive to whatever else the
// machine does in those seconds, and a Go broker and Mosquitto respond to
// it differently, so even a ratio measured within one run moves by tens of
// percent from run to run. The pair loads therefore run in rounds: every
// broker once per round, in turn, so each round's brokers share the
// machine's state, and each broker's figures are its middle round by
// messages per second (the median), with every round's rate noted.

// runRounds runs load l against every broker, l.Rounds times in turn,
// and returns each broker's middle round.
func runRounds(ctx context.Context, env *Env, l Load, brokers []string, progress func(string, ...any)) ([]Result, error) {
	rounds := make(map[string][]Result, len(brokers))
	for round := 1; round <= l.Rounds; round++ {
		for _, b := range brokers {
			name := l.Name + " " + b
			if l.Rounds > 1 {
				name += fmt.Sprintf(" (round %d of %d)", round, l.Rounds)
			}
			progress("%s: running", name)
			res := env.runLoad(ctx, l, b)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			switch {
			case res.Error != "":
				progress("%s: failed: %s", name, oneLine(res.Error))
			case l.Kind == KindRamp:
				progress("%s: zero-loss capacity %s msg/s", name, res.capacity())
			default:
				progress("%s: %s", name, res.Line())
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

// roundsLine is a note's list of each round's msg/s.
func roundsLine(rates []float64) string {
	s := make([]string, len(rates))
	for i, r := range rates {
		s[i] = fmt.Sprintf("%.0f", r)
	}
	return strings.Join(s, ", ")
}
