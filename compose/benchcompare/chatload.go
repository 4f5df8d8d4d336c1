package benchcompare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	var nodes []*child
	for i := range cfg.Nodes {
		nick := "n" + strconv.Itoa(i)
		argv := spreadArgs(cfg.nodeArgs(e.Bins.Chatnode, spreadURL(url, i), nick, filepath.Join(logs, nick+".log"), label), cfg, url)
		c, err := startChild(ctx, "chatnode "+nick, argv, filepath.Join(dir, nick+".out"))
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
	if err := errors.Join(errs...); err != nil {
		return measured{}, err
	}
	if err := ctx.Err(); err != nil {
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
	for _, s := range sum.Scenarios {
		if s.Name == label {
			return s, nil
		}
	}
	return analysis.ScenarioSummary{}, fmt.Errorf("analysis of %s: no scenario %q (did the nodes send?)", logs, label)
}
