package eval

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// FailoverTarget is the failover time (last delivery before the loss to the
// first after it) a node must stay within when its broker is killed.
const FailoverTarget = 2 * time.Second

// RestartTarget is FailoverTarget for a graceful restart: the broker hands
// its work over before it closes its clients.
const RestartTarget = time.Second

// FailoverFault names the windows reportFailover adds to the drill log, one
// per node that failed over, so the analysis marks them beside the fault.
const FailoverFault = "failover"

// NodeFailover is one node's move from a killed broker to another.
type NodeFailover struct {
	Node          string `json:"node"`
	BrokerLost    string `json:"broker_lost"`
	BrokerAfter   string `json:"broker_after"`
	LostNS        int64  `json:"lost_ns"`        // the connection dropped
	ReconnectedNS int64  `json:"reconnected_ns"` // subscribed on the next broker
	// LastBeforeNS and FirstAfterNS are the deliveries around the loss;
	// FailoverMS is the time between them.
	LastBeforeNS int64   `json:"last_before_ns"`
	FirstAfterNS int64   `json:"first_after_ns"`
	FailoverMS   float64 `json:"failover_ms"`
	ReconnectMS  float64 `json:"reconnect_ms"`
}

// FailoverReport is the failover of every node of a killed or restarted broker.
type FailoverReport struct {
	Scenario string `json:"scenario"`
	Broker   string `json:"broker"`
	// Fault is kill-broker or restart-broker; KilledNS is when it started.
	Fault    string         `json:"fault"`
	KilledNS int64          `json:"killed_ns"`
	Nodes    []NodeFailover `json:"nodes"`
	// P50MS and MaxMS are over Nodes; Met says MaxMS is within TargetMS.
	P50MS    float64 `json:"p50_ms"`
	MaxMS    float64 `json:"max_ms"`
	TargetMS float64 `json:"target_ms"`
	Met      bool    `json:"met"`
}

// reportFailover measures a cluster scenario's failovers from the logs,
// writes failover.json and failover.md beside them and adds the windows to
// the drill log.
func (r *Runner) reportFailover(s Scenario, logs string) error {
	if s.Deployment != DeployCluster {
		return nil
	}
	reports, err := MeasureFailover(s.Name, logs)
	if err != nil || len(reports) == 0 {
		return err
	}
	if err := writeFailover(filepath.Dir(logs), reports); err != nil {
		return err
	}
	for _, rep := range reports {
		if len(rep.Nodes) == 0 {
			r.say("%s: failover from %s (%s): no node had deliveries on both sides of it", s.Name, rep.Broker, rep.Fault)
			continue
		}
		r.say("%s: failover from %s (%s): %d nodes, p50 %.0f ms, max %.0f ms (target %.0f ms: %s)", s.Name, rep.Broker,
			rep.Fault, len(rep.Nodes), rep.P50MS, rep.MaxMS, rep.TargetMS, metWord(rep.Met))
	}
	return nil
}

func metWord(met bool) string {
	if met {
		return "met"
	}
	return "MISSED"
}

// nodeTrace is what one node's log says about its connection and deliveries.
type nodeTrace struct {
	node     string
	recv     []int64       // delivery times, in log order
	lost, up []brokerEvent // connection losses and (re)connections
}

type brokerEvent struct {
	ts     int64
	broker string
	fault  string // the drill's fault kind, for a kill or restart
}

// logLine is the part of a log line the failover measure reads.
type logLine struct {
	nodelog.Record
	Broker string `json:"broker"`
}

// MeasureFailover returns, for every broker kill or restart in logs'
// drill.log, the failover of each node that was on the broker.
func MeasureFailover(scenario, logs string) ([]FailoverReport, error) {
	kills, traces, err := readFailoverLogs(logs)
	if err != nil {
		return nil, err
	}
	var reports []FailoverReport
	for _, k := range kills {
		target := FailoverTarget
		if k.fault == RestartBroker {
			target = RestartTarget
		}
		rep := FailoverReport{Scenario: scenario, Broker: k.broker, Fault: k.fault, KilledNS: k.ts, TargetMS: ms(int64(target))}
		var times []float64
		for _, t := range traces {
			if nf, ok := t.failover(k); ok {
				rep.Nodes = append(rep.Nodes, nf)
				times = append(times, nf.FailoverMS)
			}
		}
		if len(times) > 0 {
			slices.Sort(times)
			rep.P50MS, rep.MaxMS = times[(len(times)-1)/2], times[len(times)-1]
			rep.Met = rep.MaxMS <= rep.TargetMS
		}
		reports = append(reports, rep)
	}
	return reports, nil
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }

// failover finds the node's loss of k's broker (at most a second before the
// kill was recorded: the drill logs after docker returns) and the
// deliveries around it.
func (t nodeTrace) failover(k brokerEvent) (NodeFailover, bool) {
	i := slices.IndexFunc(t.lost, func(e brokerEvent) bool {
		return e.ts >= k.ts-int64(time.Second) && brokerHost(e.broker) == k.broker
	})
	if i < 0 {
		return NodeFailover{}, false
	}
	lost := t.lost[i]
	nf := NodeFailover{Node: t.node, BrokerLost: lost.broker, LostNS: lost.ts}
	if j := slices.IndexFunc(t.up, func(e brokerEvent) bool { return e.ts > lost.ts }); j >= 0 {
		nf.ReconnectedNS, nf.BrokerAfter = t.up[j].ts, t.up[j].broker
		nf.ReconnectMS = ms(nf.ReconnectedNS - lost.ts)
	}
	for _, ts := range t.recv {
		switch {
		case ts <= lost.ts:
			nf.LastBeforeNS = max(nf.LastBeforeNS, ts)
		case nf.FirstAfterNS == 0 || ts < nf.FirstAfterNS:
			nf.FirstAfterNS = ts
		}
	}
	if nf.LastBeforeNS == 0 || nf.FirstAfterNS == 0 {
		return NodeFailover{}, false // no delivery on one side: nothing to measure
	}
	nf.FailoverMS = ms(nf.FirstAfterNS - nf.LastBeforeNS)
	return nf, true
}

// brokerHost is a broker URL's host, its compose service (tcp://broker2:1883 → broker2).
func brokerHost(broker string) string {
	u, err := url.Parse(broker)
	if err != nil {
		return broker
	}
	return u.Hostname()
}

// readFailoverLogs returns the broker kills of drill.log and every node's trace.
func readFailoverLogs(logs string) (kills []brokerEvent, traces []nodeTrace, err error) {
	files, err := filepath.Glob(filepath.Join(logs, "*.log"))
	if err != nil {
		return nil, nil, fmt.Errorf("list logs in %s: %w", logs, err)
	}
	for _, f := range files {
		t := nodeTrace{node: strings.TrimSuffix(filepath.Base(f), ".log")}
		err := scanLog(f, func(l logLine) {
			switch l.Event {
			case nodelog.EventFault:
				if (l.Fault == KillBroker || l.Fault == RestartBroker) && l.Phase == nodelog.PhaseStart {
					kills = append(kills, brokerEvent{l.TSNS, l.Target, l.Fault})
				}
			case nodelog.EventReceived:
				t.recv = append(t.recv, cmp.Or(l.RecvNS, l.TSNS))
			case nodelog.EventConnectionLost:
				t.lost = append(t.lost, brokerEvent{ts: l.TSNS, broker: l.Broker})
			case nodelog.EventConnected, nodelog.EventReconnected:
				t.up = append(t.up, brokerEvent{ts: l.TSNS, broker: l.Broker})
			}
		})
		if err != nil {
			return nil, nil, err
		}
		if len(t.recv) > 0 || len(t.lost) > 0 {
			traces = append(traces, t)
		}
	}
	return kills, traces, nil
}

// scanLog calls fn for every JSON line of the file at path; other lines
// (a partial last line after a kill) are skipped.
func scanLog(path string, fn func(logLine)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			fn(l)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read log %s: %w", path, err)
	}
	return nil
}

// writeFailover writes failover.json and failover.md into dir and appends
// each node's failover window to dir/logs/drill.log.
func writeFailover(dir string, reports []FailoverReport) error {
	js, err := json.MarshalIndent(reports, "", "  ")
	if err != nil {
		return fmt.Errorf("encode failover report: %w", err)
	}
	for name, data := range map[string][]byte{"failover.json": append(js, '\n'), "failover.md": []byte(failoverMarkdown(reports))} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o666); err != nil {
			return fmt.Errorf("write failover report: %w", err)
		}
	}
	drill, err := os.OpenFile(filepath.Join(dir, "logs", "drill.log"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		return fmt.Errorf("open drill log: %w", err)
	}
	enc := json.NewEncoder(drill)
	for _, rep := range reports {
		for _, nf := range rep.Nodes {
			edges := [2]int64{nf.LastBeforeNS, nf.FirstAfterNS}
			for i, phase := range []string{nodelog.PhaseStart, nodelog.PhaseEnd} {
				// The line logrus would write at edges[i], as runFaults writes the others.
				line := faultFields(rep.Scenario, edges[i], FailoverFault, phase, nf.Node)
				line["time"], line["level"], line["msg"] = time.Unix(0, edges[i]).UTC().Format(time.RFC3339Nano), "info", nodelog.EventFault
				if err := enc.Encode(line); err != nil {
					return errors.Join(fmt.Errorf("append to drill log: %w", err), drill.Close())
				}
			}
		}
	}
	if err := drill.Close(); err != nil {
		return fmt.Errorf("close drill log: %w", err)
	}
	return nil
}

// failoverMarkdown is the report for people: a table per fault.
func failoverMarkdown(reports []FailoverReport) string {
	var b strings.Builder
	for _, rep := range reports {
		fmt.Fprintf(&b, "# %s: failover from %s (%s)\n\n", rep.Scenario, rep.Broker, rep.Fault)
		fmt.Fprintf(&b, "Failover time per node: its last delivery before the loss of %s to its first delivery after it.\n\n", rep.Broker)
		b.WriteString("| node | lost | reconnected to | reconnect (ms) | failover (ms) |\n|---|---|---|---:|---:|\n")
		for _, nf := range rep.Nodes {
			fmt.Fprintf(&b, "| %s | %s | %s | %.0f | %.0f |\n", nf.Node, nf.BrokerLost, nf.BrokerAfter, nf.ReconnectMS, nf.FailoverMS)
		}
		fmt.Fprintf(&b, "\np50 %.0f ms, max %.0f ms over %d nodes; target ≤ %.0f ms: %s.\n\n", rep.P50MS, rep.MaxMS, len(rep.Nodes), rep.TargetMS, metWord(rep.Met))
	}
	return b.String()
}
