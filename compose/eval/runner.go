package eval

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// Commander runs an external command and returns its standard output. The
// real one runs docker and docker-compose; tests record the calls instead.
type Commander interface {
	Run(ctx context.Context, env []string, name string, args ...string) (string, error)
}

// ExecCommander runs commands with os/exec.
type ExecCommander struct{}

// Run runs name with args and env, returning stdout; stderr goes into the error.
func (ExecCommander) Run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		msg = msg[strings.LastIndexByte(msg, '\n')+1:] // its last line
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// Runner runs scenarios one after another against compose/eval.yml.
type Runner struct {
	ComposeFile string // the path of compose/eval.yml
	// Project is the docker-compose project name (default distchat-eval), so
	// an evaluation never touches the demo deployment.
	Project string
	Results string // receives <scenario>/logs/*.log
	Cmd     Commander
	// Sleep waits for d or until ctx ends; tests replace it to run instantly.
	Sleep    func(ctx context.Context, d time.Duration) error
	Progress io.Writer     // one line per step
	Grace    time.Duration // the wait for the nodes after duration+linger
	// Healthz asks a broker's /healthz at host:port once (default
	// HTTPHealthz); tests replace it.
	Healthz    func(ctx context.Context, addr string) error
	containers map[string]string // by service; runs are one at a time
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// action is one step of a scenario's fault timeline.
type action struct {
	at    time.Duration
	fault Fault
	phase string
}

// timeline orders the start and end of every fault by time.
func (s *Scenario) timeline() []action {
	var acts []action
	for _, f := range s.Faults {
		acts = append(acts, action{f.At, f, nodelog.PhaseStart}, action{f.At + f.For, f, nodelog.PhaseEnd})
	}
	slices.SortStableFunc(acts, func(a, b action) int { return cmp.Compare(a.at, b.at) })
	return acts
}

// Run runs one scenario: a clean deployment, the load, the faults, the wait
// for every node and the teardown; the logs stay in Results/<name>/logs.
func (r *Runner) Run(ctx context.Context, s Scenario) (err error) {
	r.defaults()
	r.containers = map[string]string{}
	logs, err := r.prepareLogs(s.Name)
	if err != nil {
		return err
	}
	env := append(s.Env(logs), s.clusterEnv()...)
	compose := func(ctx context.Context, args ...string) (string, error) {
		return r.Cmd.Run(ctx, env, "docker-compose", append([]string{"-p", r.Project, "-f", r.composeFileFor(s)}, args...)...)
	}
	r.say("%s: %s (%d nodes, %d msg/s per node for %s, %d B, room log %t, %d faults)", s.Name, s.Description,
		len(s.NodeNames()), s.Rate, s.Duration, s.Size, *s.RoomLog, len(s.Faults))
	if _, err := compose(ctx, "down", "-v", "--remove-orphans"); err != nil {
		return err
	}
	defer func() { err = r.teardown(ctx, s.Name, compose, err) }()
	if _, err := compose(ctx, append([]string{"up", "-d"}, s.brokerServices()...)...); err != nil {
		return err
	}
	if err := r.waitClusterStarted(ctx, s, compose); err != nil {
		return err
	}
	if _, err := compose(ctx, append([]string{"up", "-d", "--no-recreate"}, s.NodeNames()...)...); err != nil {
		return err
	}
	if err := r.runFaults(ctx, s, logs, compose); err != nil {
		return err
	}
	if err := r.waitNodes(ctx, s, env, compose); err != nil {
		return err
	}
	return r.reportFailover(s, logs)
}

// composeFunc runs docker-compose on the evaluation project with args.
type composeFunc func(ctx context.Context, args ...string) (string, error)

func (r *Runner) defaults() {
	if r.Sleep == nil {
		r.Sleep = sleepCtx
	}
	r.Project = cmp.Or(r.Project, "distchat-eval")
	r.Grace = cmp.Or(r.Grace, 2*time.Minute)
	if r.Healthz == nil {
		r.Healthz = HTTPHealthz
	}
}

// prepareLogs empties Results/<name>/logs and returns its absolute path:
// the compose file mounts it into every node.
func (r *Runner) prepareLogs(name string) (string, error) {
	logs, err := filepath.Abs(filepath.Join(r.Results, name, "logs"))
	if err != nil {
		return "", fmt.Errorf("results dir: %w", err)
	}
	if err := os.RemoveAll(logs); err != nil {
		return "", fmt.Errorf("clear old logs %s: %w", logs, err)
	}
	if err := os.MkdirAll(logs, 0o777); err != nil {
		return "", fmt.Errorf("create logs dir: %w", err)
	}
	return logs, nil
}

// teardown saves the containers' output into Results/<name>/compose.log and
// removes the deployment, also after a failure; it returns err, or else its own.
func (r *Runner) teardown(ctx context.Context, name string, compose composeFunc, err error) error {
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if out, lerr := compose(tctx, "logs", "--no-color", "--timestamps"); lerr == nil {
		if werr := os.WriteFile(filepath.Join(r.Results, name, "compose.log"), []byte(out), 0o666); werr != nil && err == nil {
			err = fmt.Errorf("save compose logs: %w", werr)
		}
	}
	if _, derr := compose(tctx, "down", "-v", "--remove-orphans"); derr != nil && err == nil {
		err = derr
	}
	return err
}

// runFaults writes the drill log (the scenario's groups first, then one line
// per fault start and end) and applies the faults on schedule.
func (r *Runner) runFaults(ctx context.Context, s Scenario, logs string, compose composeFunc) error {
	drill, err := os.Create(filepath.Join(logs, "drill.log"))
	if err != nil {
		return fmt.Errorf("create drill log: %w", err)
	}
	defer drill.Close()
	dlog := logrus.New()
	dlog.SetOutput(drill)
	dlog.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	if len(s.Groups) > 0 {
		dlog.WithFields(logrus.Fields{
			nodelog.FieldEvent: nodelog.EventScenario, nodelog.FieldNode: "drill", nodelog.FieldRun: s.Name,
			nodelog.FieldTSNS: time.Now().UnixNano(), nodelog.FieldGroup: strings.Join(s.Groups, ","),
		}).Info(nodelog.EventScenario)
	}
	var elapsed time.Duration
	began := time.Now()
	for _, a := range s.timeline() {
		if err := r.Sleep(ctx, a.at-elapsed); err != nil {
			return err
		}
		elapsed = a.at
		// A fault starts as its command is issued (docker-compose takes a
		// second to send a kill) and ends when its repair returns.
		at := time.Now()
		if err := r.apply(ctx, compose, a); err != nil {
			return fmt.Errorf("fault %s %s: %w", a.fault.Kind, a.phase, err)
		}
		if a.phase == nodelog.PhaseEnd {
			at = time.Now()
		}
		target := brokerTarget(a.fault)
		dlog.WithFields(faultFields(s.Name, at.UnixNano(), a.fault.Kind, a.phase, target)).Info(nodelog.EventFault)
		r.say("%s: +%s %s %s %s", s.Name, a.at, a.fault.Kind, target, a.phase)
		if late := time.Since(began); a.at <= s.Duration && late > s.Duration {
			r.say("%s: warning: %s %s %s came %s after the nodes started, after their %s of sending: lengthen duration",
				s.Name, a.fault.Kind, target, a.phase, late.Round(time.Second), s.Duration)
		}
	}
	return nil
}

// faultFields are a drill log line's fields for one edge of a fault window.
func faultFields(run string, ts int64, fault, phase, target string) logrus.Fields {
	return logrus.Fields{nodelog.FieldEvent: nodelog.EventFault, nodelog.FieldNode: "drill", nodelog.FieldRun: run,
		nodelog.FieldTSNS: ts, nodelog.FieldFault: fault, nodelog.FieldPhase: phase, nodelog.FieldTarget: target}
}

// waitNodes waits, at most duration+linger+Grace, for every node to exit.
func (r *Runner) waitNodes(ctx context.Context, s Scenario, env []string, compose composeFunc) error {
	wctx, cancel := context.WithTimeout(ctx, s.Duration+s.Linger+r.Grace)
	defer cancel()
	for _, n := range s.NodeNames() {
		id, err := compose(wctx, "ps", "-q", n)
		if err != nil {
			return err
		}
		code, err := r.Cmd.Run(wctx, env, "docker", "wait", strings.TrimSpace(id))
		if err != nil {
			return fmt.Errorf("wait for %s: %w", n, err)
		}
		r.say("%s: %s finished (exit %s)", s.Name, n, strings.TrimSpace(code))
	}
	return nil
}

func (r *Runner) apply(ctx context.Context, compose composeFunc, a action) error {
	start := a.phase == nodelog.PhaseStart
	switch a.fault.Kind {
	case KillNode, KillBroker:
		args := []string{"start"}
		if start {
			args = []string{"kill", "-s", "SIGKILL"}
		}
		_, err := compose(ctx, append(args, brokerTarget(a.fault))...) // a node fault always names its target
		return err
	case RestartBroker:
		return r.restartBroker(ctx, brokerTarget(a.fault), start)
	case PartitionBroker:
		return r.disconnect(ctx, compose, a.fault.Target, clusterNetwork, start, a.fault.Target, a.fault.Target+"-peer")
	case Partition:
		return r.disconnect(ctx, compose, a.fault.Target, "chat", start)
	}
	return fmt.Errorf("unknown fault kind %q", a.fault.Kind)
}

// disconnect cuts service from the project's network (start) or connects
// it again (end) under aliases, which other services may name.
func (r *Runner) disconnect(ctx context.Context, compose composeFunc, service, network string, start bool, aliases ...string) error {
	id, err := compose(ctx, "ps", "-q", service)
	if err != nil {
		return err
	}
	network = r.Project + "_" + network
	args := []string{"network", "disconnect", network}
	if !start {
		args = []string{"network", "connect"}
		for _, a := range aliases {
			args = append(args, "--alias", a)
		}
		args = append(args, network)
	}
	_, err = r.Cmd.Run(ctx, nil, "docker", append(args, strings.TrimSpace(id))...)
	return err
}

func (r *Runner) say(format string, a ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, "eval: "+format+"\n", a...)
	}
}
