package benchcompare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/distchat/distchat/analysis"
)

// ChatConfig is the shape of an open-loop chat load.
type ChatConfig struct {
	Nodes    int           // chatnode bench processes, all in one room
	Rate     float64       // messages per second per node
	Duration time.Duration // how long each node sends
	Size     int           // encoded message bytes
	Linger   time.Duration // the wait for late messages after sending
}

const chatRoom = "bench"

// nodeArgs is one chatnode bench command line of the load.
func (c ChatConfig) nodeArgs(bin, url, nick, logFile, label string) []string {
	return []string{bin, "bench", "-broker", url, "-nick", nick, "-room", chatRoom,
		"-rate", strconv.FormatFloat(c.Rate, 'f', -1, 64), "-duration", c.Duration.String(),
		"-peers", strconv.Itoa(c.Nodes), "-size", strconv.Itoa(c.Size), "-linger", c.Linger.String(),
		"-log", logFile, "-run", label, "-log-level", "info"}
}

// runChat runs the chat load against url in dir: the nodes' latencies and
// loss come from the analysis of their logs, their CPU from the kernel.
func (e *Env) runChat(ctx context.Context, url, dir, label string, cfg ChatConfig) (measured, error) {
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return measured{}, fmt.Errorf("chat load: %w", err)
	}
	var nodes []*Child
	for i := range cfg.Nodes {
		nick := "n" + strconv.Itoa(i)
		argv := spreadArgs(cfg.nodeArgs(e.Bins.Chatnode, spreadURL(url, i), nick, filepath.Join(logs, nick+".log"), label), cfg, url)
		c, err := StartChild(ctx, "chatnode "+nick, argv, filepath.Join(dir, nick+".out"))
		if err != nil {
			_, serr := stopAll(nodes)
			return measured{}, errors.Join(serr, err)
		}
		nodes = append(nodes, c)
	}
	var cpu time.Duration
	var errs []error
	for _, c := range nodes {
		u, code, err := c.wait()
		cpu += u.CPU
		// Exit 1 is "fewer messages than expected": loss, which the
		// analysis counts. Anything else is a failed node.
		if err == nil && code != 0 && code != 1 {
			err = fmt.Errorf("%s: exit code %d (%s)", c.name, code, lastLine(c.logPath))
		}
		errs = append(errs, err)
	}
	if err := errors.Join(append(errs, ctx.Err())...); err != nil {
		return measured{}, err
	}
	s, err := e.analyse(ctx, logs, filepath.Join(dir, "analysis"), label)
	if err != nil {
		return measured{}, err
	}
	f := Figures{P50MS: s.LatencyMS.P50, P99MS: s.LatencyMS.P99, MaxMS: s.LatencyMS.Max,
		MsgPerS: s.ThroughputMsgsPerS, Loss: s.Lost, Deliveries: s.Received}
	return measured{fig: f, loadCPU: cpu}, nil
}

// analyse runs the analysis over logs and returns scenario label's summary.
func (e *Env) analyse(ctx context.Context, logs, out, label string) (analysis.ScenarioSummary, error) {
	cmd := exec.CommandContext(ctx, e.Bins.Analysis, "-q", "-no-plots", "-out", out, logs)
	if b, err := cmd.CombinedOutput(); err != nil {
		return analysis.ScenarioSummary{}, fmt.Errorf("analysis of %s: %w (%s)", logs, err, lastOf(string(b)))
	}
	b, err := os.ReadFile(filepath.Join(out, "summary.json"))
	if err != nil {
		return analysis.ScenarioSummary{}, fmt.Errorf("read analysis summary: %w", err)
	}
	var sum analysis.Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		return analysis.ScenarioSummary{}, fmt.Errorf("decode analysis summary: %w", err)
	}
	if i := slices.IndexFunc(sum.Scenarios, func(s analysis.ScenarioSummary) bool { return s.Name == label }); i >= 0 {
		return sum.Scenarios[i], nil
	}
	return analysis.ScenarioSummary{}, fmt.Errorf("analysis of %s: no scenario %q (did the nodes send?)", logs, label)
}

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
