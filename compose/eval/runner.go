package eval

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/wire"
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
		if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
			msg = msg[i+1:]
		}
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return stdout.String(), nil
}

// Runner runs scenarios one after another against compose/eval.yml.
type Runner struct {
	// ComposeFile is the path of compose/eval.yml.
	ComposeFile string
	// Project is the docker-compose project name (default distchat-eval), so
	// an evaluation never touches the demo deployment.
	Project string
	// Results is the directory that receives <scenario>/logs/*.log.
	Results string
	Cmd     Commander
	// Sleep waits for d or until ctx ends; tests replace it to run instantly.
	Sleep func(ctx context.Context, d time.Duration) error
	// Progress receives one line per step for the person running the evaluation.
	Progress io.Writer
	// Grace is how long after duration+linger the runner waits for the nodes.
	Grace time.Duration
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

// Timeline orders the start and end of every fault by time.
func (s *Scenario) timeline() []action {
	var acts []action
	for _, f := range s.Faults {
		acts = append(acts, action{f.At, f, wire.PhaseStart}, action{f.At + f.For, f, wire.PhaseEnd})
	}
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].at < acts[j].at })
	return acts
}

// Run runs one scenario: a clean deployment, the load, the faults, the wait
// for every node to finish, and the teardown. The logs stay in
// Results/<name>/logs, with drill.log holding the fault windows.
func (r *Runner) Run(ctx context.Context, s Scenario) (err error) {
	if r.Sleep == nil {
		r.Sleep = sleepCtx
	}
	if r.Project == "" {
		r.Project = "distchat-eval"
	}
	if r.Grace == 0 {
		r.Grace = 2 * time.Minute
	}
	logs, err := filepath.Abs(filepath.Join(r.Results, s.Name, "logs"))
	if err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	if err := os.RemoveAll(logs); err != nil {
		return fmt.Errorf("clear old logs %s: %w", logs, err)
	}
	if err := os.MkdirAll(logs, 0o777); err != nil {
		return fmt.Errorf("create logs dir: %w", err)
	}
	env := append(s.Env(logs), s.clusterEnv()...)
	compose := func(ctx context.Context, args ...string) (string, error) {
		return r.Cmd.Run(ctx, env, "docker-compose", append([]string{"-p", r.Project, "-f", r.composeFileFor(s)}, args...)...)
	}
	r.say("%s: %s (%d msg/s per node for %s, room log %t, %d faults)", s.Name, s.Description, s.Rate, s.Duration, *s.RoomLog, len(s.Faults))
	if _, err := compose(ctx, "down", "-v", "--remove-orphans"); err != nil {
		return err
	}
	defer func() {
		// Tear down even when the run failed or was interrupted.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if out, lerr := compose(tctx, "logs", "--no-color", "--timestamps"); lerr == nil {
			if werr := os.WriteFile(filepath.Join(r.Results, s.Name, "compose.log"), []byte(out), 0o666); werr != nil && err == nil {
				err = fmt.Errorf("save compose logs: %w", werr)
			}
		}
		if _, derr := compose(tctx, "down", "-v", "--remove-orphans"); derr != nil && err == nil {
			err = derr
		}
	}()
	if _, err := compose(ctx, append([]string{"up", "-d"}, s.brokerServices()...)...); err != nil {
		return err
	}
	if err := r.waitClusterStarted(ctx, s, compose); err != nil {
		return err
	}
	if _, err := compose(ctx, append([]string{"up", "-d", "--no-recreate"}, s.nodeServices()...)...); err != nil {
		return err
	}
	drill, err := os.Create(filepath.Join(logs, "drill.log"))
	if err != nil {
		return fmt.Errorf("create drill log: %w", err)
	}
	defer drill.Close()
	dlog := logrus.New()
	dlog.SetOutput(drill)
	dlog.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})

	var elapsed time.Duration
	for _, a := range s.timeline() {
		if err := r.Sleep(ctx, a.at-elapsed); err != nil {
			return err
		}
		elapsed = a.at
		if err := r.apply(ctx, compose, a); err != nil {
			return fmt.Errorf("fault %s %s: %w", a.fault.Kind, a.phase, err)
		}
		target := a.fault.Target
		if target == "" {
			target = brokerTarget(a.fault)
		}
		dlog.WithFields(logrus.Fields{
			wire.FieldEvent: wire.EventFault, wire.FieldNode: "drill", wire.FieldRun: s.Name,
			wire.FieldTSNS: time.Now().UnixNano(), wire.FieldFault: a.fault.Kind, wire.FieldPhase: a.phase,
			wire.FieldTarget: target,
		}).Info(wire.EventFault)
		r.say("%s: +%s %s %s %s", s.Name, a.at, a.fault.Kind, target, a.phase)
	}
	wctx, cancel := context.WithTimeout(ctx, s.Duration+s.Linger+r.Grace)
	defer cancel()
	for _, n := range s.nodeServices() {
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
	return r.reportFailover(s, logs)
}

func (r *Runner) apply(ctx context.Context, compose func(context.Context, ...string) (string, error), a action) error {
	start := a.phase == wire.PhaseStart
	switch a.fault.Kind {
	case KillBroker:
		if start {
			_, err := compose(ctx, "kill", "-s", "SIGKILL", brokerTarget(a.fault))
			return err
		}
		_, err := compose(ctx, "start", brokerTarget(a.fault))
		return err
	case RestartBroker:
		if start {
			_, err := compose(ctx, "stop", "-t", "20", brokerTarget(a.fault))
			return err
		}
		_, err := compose(ctx, "start", brokerTarget(a.fault))
		return err
	case PartitionBroker:
		return r.partitionBroker(ctx, compose, a.fault.Target, start)
	case Partition:
		id, err := compose(ctx, "ps", "-q", a.fault.Target)
		if err != nil {
			return err
		}
		verb := "connect"
		if start {
			verb = "disconnect"
		}
		_, err = r.Cmd.Run(ctx, nil, "docker", "network", verb, r.Project+"_chat", strings.TrimSpace(id))
		return err
	}
	return fmt.Errorf("unknown fault kind %q", a.fault.Kind)
}

func (r *Runner) say(format string, a ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, "eval: "+format+"\n", a...)
	}
}
