package benchcompare

import (
	"cmp"
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
