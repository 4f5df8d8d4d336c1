package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/distchat/distchat/analysis/percentile"
	"github.com/distchat/distchat/broker/netwait"
	"github.com/distchat/distchat/compose/benchcompare"
)

// params are the shape of one measurement.
type params struct {
	bin        string
	nodes      int
	rate       float64
	duration   time.Duration
	size       int
	dir        string
	cpuprofile string
	client     string // chatnode or paho
}

// result is what one measurement found.
type result struct {
	nodes                 int
	deliveries            int
	nodeCPU, brokerCPU    time.Duration
	nodeSys               time.Duration // the system-time part of nodeCPU
	p50Median, p99Max     time.Duration
	sentTotal, duplicates int
}

func (r result) String() string {
	per := func(d time.Duration) float64 {
		if r.deliveries == 0 {
			return 0
		}
		return float64(d.Microseconds()) / float64(r.deliveries)
	}
	return fmt.Sprintf("nodes=%d sent=%d deliveries=%d duplicates=%d node_cpu=%.2fs node_us_per_delivery=%.1f "+
		"node_sys=%.2fs broker_cpu=%.2fs broker_us_per_delivery=%.1f p50_median=%s p99_max=%s",
		r.nodes, r.sentTotal, r.deliveries, r.duplicates, r.nodeCPU.Seconds(), per(r.nodeCPU),
		r.nodeSys.Seconds(), r.brokerCPU.Seconds(), per(r.brokerCPU), r.p50Median, r.p99Max)
}

// measure runs the broker and the nodes once.
func measure(ctx context.Context, p params) (result, error) {
	dir := p.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "benchnodes-")
		if err != nil {
			return result{}, fmt.Errorf("temp dir: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return result{}, fmt.Errorf("log dir: %w", err)
	}
	port, err := netwait.FreePort()
	if err != nil {
		return result{}, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	broker, err := benchcompare.StartChild(ctx, "broker",
		[]string{filepath.Join(p.bin, "broker"), "-tcp", addr, "-http", "", "-log-level", "error"}, "")
	if err != nil {
		return result{}, err
	}
	defer broker.Stop() // after a failure; a no-op once stopped
	if err := broker.Listening(ctx, addr, 10*time.Second); err != nil {
		return result{}, fmt.Errorf("broker: %w", err)
	}
	res, err := runNodes(ctx, p, "tcp://"+addr, dir)
	if err != nil {
		return res, err
	}
	u, err := broker.Stop()
	res.brokerCPU = u.CPU
	return res, err
}

// runNodes starts the chat nodes, waits for all of them and sums what they
// report.
func runNodes(ctx context.Context, p params, url, dir string) (result, error) {
	cmds := make([]*exec.Cmd, p.nodes)
	outs := make([]bytes.Buffer, p.nodes)
	startAt := time.Now().Add(pahoStartDelay).UnixNano()
	for i := range cmds {
		nick := fmt.Sprintf("n%d", i)
		cmd, err := nodeCommand(ctx, p, url, dir, nick, startAt+p.phase(i).Nanoseconds())
		if err != nil {
			return result{}, err
		}
		errf, err := os.Create(filepath.Join(dir, nick+".stderr"))
		if err != nil {
			return result{}, fmt.Errorf("node %s stderr: %w", nick, err)
		}
		defer errf.Close()
		cmd.Stdout, cmd.Stderr = &outs[i], errf
		if err := cmd.Start(); err != nil {
			return result{}, fmt.Errorf("start node %s: %w", nick, err)
		}
		cmds[i] = cmd
	}
	res := result{nodes: p.nodes}
	var errs []error
	var p50s []time.Duration
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("node n%d: %w: %s", i, err, bytes.TrimSpace(outs[i].Bytes())))
		}
		res.nodeCPU += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
		res.nodeSys += c.ProcessState.SystemTime()
		s, err := parseSummary(outs[i].Bytes())
		if err != nil {
			errs = append(errs, fmt.Errorf("node n%d: %w", i, err))
			continue
		}
		res.deliveries += s.received
		res.sentTotal += s.sent
		res.duplicates += s.duplicates
		p50s = append(p50s, s.p50)
		res.p99Max = max(res.p99Max, s.p99)
	}
	slices.Sort(p50s)
	res.p50Median = percentile.Of(p50s, 500) // nearest rank, like every percentile
	return res, errors.Join(errs...)
}

// phase is how far node i's send schedule is shifted, spreading the
// nodes' sends evenly over one interval: chat nodes start at unrelated
// moments, so each delivery wakes its receivers on its own, while bare
// paho nodes on one schedule would send together, a lighter load.
func (p params) phase(i int) time.Duration {
	if p.rate <= 0 || p.nodes <= 0 {
		return 0
	}
	return time.Duration(float64(time.Second) / p.rate * float64(i) / float64(p.nodes))
}

// pahoStartDelay is how long after their start bare paho nodes begin to
// send: time to connect and subscribe (chat nodes wait for their peers'
// presence instead).
const pahoStartDelay = 3 * time.Second

// nodeCommand is the command line of one node.
func nodeCommand(ctx context.Context, p params, url, dir, nick string, startAt int64) (*exec.Cmd, error) {
	rate, size := strconv.FormatFloat(p.rate, 'f', -1, 64), strconv.Itoa(p.size)
	if p.client == "paho" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find benchnodes itself: %w", err)
		}
		cmd := exec.CommandContext(ctx, self, pahoNodeArg, "-broker", url, "-nick", nick, "-rate", rate,
			"-duration", p.duration.String(), "-peers", strconv.Itoa(p.nodes), "-size", size,
			"-start-at", strconv.FormatInt(startAt, 10))
		if os.Getenv("GOMAXPROCS") == "" {
			cmd.Env = append(os.Environ(), "GOMAXPROCS=1") // as a chat node runs (chatnode.OneProc)
		}
		return cmd, nil
	}
	args := []string{"bench", "-broker", url, "-nick", nick, "-room", "lobby",
		"-rate", rate, "-duration", p.duration.String(), "-peers", strconv.Itoa(p.nodes), "-size", size,
		"-log", filepath.Join(dir, nick+".log"), "-run", "x"}
	if nick == "n0" && p.cpuprofile != "" {
		args = append(args, "-cpuprofile", p.cpuprofile)
	}
	return exec.CommandContext(ctx, filepath.Join(p.bin, "chatnode"), args...), nil
}

// summary is what one node's `bench ...` line says.
type summary struct {
	sent, received, duplicates int
	p50, p99                   time.Duration
}

var summaryRE = regexp.MustCompile(`sent=(\d+) received=(\d+) expected=\d+ duplicates=(\d+) p50=(\S+) p99=(\S+)`)

func parseSummary(out []byte) (summary, error) {
	m := summaryRE.FindSubmatch(out)
	if m == nil {
		return summary{}, fmt.Errorf("no summary line in %q", out)
	}
	var s summary
	var errs [5]error
	s.sent, errs[0] = strconv.Atoi(string(m[1]))
	s.received, errs[1] = strconv.Atoi(string(m[2]))
	s.duplicates, errs[2] = strconv.Atoi(string(m[3]))
	s.p50, errs[3] = time.ParseDuration(string(m[4]))
	s.p99, errs[4] = time.ParseDuration(string(m[5]))
	if err := errors.Join(errs[:]...); err != nil {
		return summary{}, fmt.Errorf("summary line: %w", err)
	}
	return s, nil
}
