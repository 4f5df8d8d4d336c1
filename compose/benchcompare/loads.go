package benchcompare

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distchat/distchat/analysis/percentile"
)

// LoadKind is what kind of load generator a load uses.
type LoadKind int

// The load kinds.
const (
	KindPairs LoadKind = iota // the closed-loop pair load (RunPairs), in this process
	KindChat                  // the open-loop chat load of chatnode bench processes
	KindRamp                  // the chat load at increasing rates (runRamp)
)

// Options are the durations and sizes of a run (the command's flags).
type Options struct {
	Size int // every message's encoded bytes
	// PairsWarmup and PairsDuration are the pair loads' unmeasured and
	// measured time; each broker runs each pair load PairsRounds times.
	PairsWarmup, PairsDuration time.Duration
	PairsRounds                int
	ChatDuration               time.Duration // how long each chat node sends
	RampStep                   time.Duration // how long each ramp step sends
	RampRates                  []float64     // per node, increasing
}

// Load is one named load.
type Load struct {
	Name   string
	Kind   LoadKind
	Rounds int         // each broker's runs of the load: 1 but for pair loads
	Pairs  PairsConfig // KindPairs (URL set per broker)
	Chat   ChatConfig  // KindChat; KindRamp: the shape, Rate set per step
	Rates  []float64   // KindRamp: rates per node
}

// Loads is every load of a run, in report order.
func Loads(o Options) []Load {
	pairs := func(n int) PairsConfig {
		return PairsConfig{Pairs: n, Size: o.Size, Warmup: o.PairsWarmup, Duration: o.PairsDuration, Timeout: 2 * time.Second}
	}
	chat := func(nodes int, rate float64, d time.Duration) ChatConfig {
		return ChatConfig{Nodes: nodes, Rate: rate, Duration: d, Size: o.Size, Linger: 3 * time.Second}
	}
	rounds := max(1, o.PairsRounds)
	return []Load{
		{Name: "pairs-1", Kind: KindPairs, Pairs: pairs(1), Rounds: rounds},
		{Name: "pairs-10", Kind: KindPairs, Pairs: pairs(10), Rounds: rounds},
		{Name: "chat-3x333", Kind: KindChat, Chat: chat(3, 333, o.ChatDuration), Rounds: 1},
		{Name: "chat-10x100", Kind: KindChat, Chat: chat(10, 100, o.ChatDuration), Rounds: 1},
		{Name: "ramp", Kind: KindRamp, Chat: chat(3, 0, o.RampStep), Rates: o.RampRates, Rounds: 1},
	}
}

// SelectLoads keeps the loads named in a comma-separated list ("" or "all"
// keeps every load).
func SelectLoads(all []Load, list string) ([]Load, error) {
	if list == "" || list == "all" {
		return all, nil
	}
	return pick(all, strings.Split(list, ","), func(l Load) string { return l.Name }, "load")
}

// Result is one broker under one load.
type Result struct {
	Load   string `json:"load"`
	Broker string `json:"broker"`
	Figures
	AtLeast bool       `json:"at_least,omitempty"` // every ramp step passed
	Steps   []RampStep `json:"steps,omitempty"`
	// RoundsMsgPerS is every round's msg/s; the figures are the middle round's.
	RoundsMsgPerS []float64 `json:"rounds_msg_per_s,omitempty"`
	Error         string    `json:"error,omitempty"`
}

// measured is what a load generator reports, before the broker's usage.
type measured struct {
	fig     Figures
	loadCPU time.Duration
}

// withBroker starts broker name fresh in dir, runs load against it, stops
// it and adds its CPU and peak RSS. dir is emptied first, so every round
// starts from an empty room log.
func (e *Env) withBroker(ctx context.Context, name, dir string, load func(url string) (measured, error)) (Figures, error) {
	if err := os.RemoveAll(dir); err != nil {
		return Figures{}, fmt.Errorf("clear %s: %w", dir, err)
	}
	b, err := e.startBroker(ctx, name, dir)
	if err != nil {
		return Figures{}, err
	}
	m, lerr := load(b.URL)
	var gerr error
	if lerr == nil {
		m.fig.GroupCommits, gerr = b.groupCommits(ctx)
	}
	u, serr := stopAll(b.procs) // CPU and peak RSS summed over a cluster
	if err := errors.Join(lerr, gerr, serr); err != nil {
		return Figures{}, err
	}
	m.fig.usageFigures(u, m.loadCPU)
	return m.fig, nil
}

// runLoad runs one load against one broker in a fresh directory.
func (e *Env) runLoad(ctx context.Context, l Load, broker string) Result {
	res := Result{Load: l.Name, Broker: broker}
	dir := filepath.Join(e.Tmp, l.Name, broker)
	var err error
	switch l.Kind {
	case KindPairs:
		res.Figures, err = e.withBroker(ctx, broker, dir, func(url string) (measured, error) {
			return runPairsMeasured(ctx, l.Pairs, url)
		})
	case KindChat:
		res.Figures, err = e.withBroker(ctx, broker, dir, func(url string) (measured, error) {
			return e.runChat(ctx, url, dir, l.Name+"-"+broker, l.Chat)
		})
	case KindRamp:
		res, err = e.runRamp(ctx, l, broker, dir)
	}
	if err != nil {
		res.Error = err.Error()
	}
	return res
}

// runPairsMeasured runs the pair load; this process's CPU is the load's.
func runPairsMeasured(ctx context.Context, cfg PairsConfig, url string) (measured, error) {
	cfg.URL = firstURL(url) // a cluster's first broker
	before := selfCPU()
	r, err := RunPairs(ctx, cfg)
	if err != nil {
		return measured{}, err
	}
	cpu := selfCPU() - before
	f := Figures{Loss: r.Published - r.Received, Deliveries: r.Deliveries}
	f.latencyFigures(r.Latencies)
	if r.Elapsed > 0 {
		f.MsgPerS = round(float64(r.Received)/r.Elapsed.Seconds(), 1)
	}
	return measured{fig: f, loadCPU: cpu}, nil
}

// Describe is the load's one-line description in the report.
func (l Load) Describe() string {
	switch l.Kind {
	case KindPairs:
		return fmt.Sprintf("closed loop, %d publisher/subscriber pair(s) of paho clients, each pair on its own room topic; "+
			"the next message goes when the previous one arrived; QoS 1, %d B; %s measured after %s warm-up; "+
			"%d round(s), every broker once per round in turn, figures from each broker's middle round by msg/s.",
			l.Pairs.Pairs, l.Pairs.Size, l.Pairs.Duration, l.Pairs.Warmup, l.Rounds)
	case KindChat:
		return fmt.Sprintf("open loop, %d chatnode bench processes in one room at %g msg/s each (every node receives every message); "+
			"QoS 1, %d B, %s; load CPU is the nodes'.", l.Chat.Nodes, l.Chat.Rate, l.Chat.Size, l.Chat.Duration)
	case KindRamp:
		rates := joinEach(l.Rates, func(r float64) string { return strconv.FormatFloat(r, 'f', -1, 64) })
		return fmt.Sprintf("%d chatnode bench processes in one room at %s msg/s each, %s per step, a fresh broker per step, "+
			"until a step loses a message or its p99 passes %d ms; capacity is the highest total rate that passed, "+
			"the other figures are that step's.", l.Chat.Nodes, rates, l.Chat.Duration, rampP99LimitMS)
	}
	return fmt.Sprintf("LoadKind(%d)", int(l.Kind))
}

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
