package benchcompare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/distchat/distchat/broker/netwait"
)

// stopGrace is how long a child has to exit after SIGTERM before SIGKILL.
const stopGrace = 5 * time.Second

// Usage is what the kernel accounted to one child process over its life.
type Usage struct {
	CPU      time.Duration // user plus system
	MaxRSSKB int64         // peak resident set size in KiB (ru_maxrss)
	// Switches counts the process's context switches, voluntary and not
	// (ru_nvcsw + ru_nivcsw), over all its threads: a process woken once
	// per packet shows it here before it shows in latency.
	Switches int64
}

// Child is one started process; Stop returns what the kernel accounted to
// it. chatnode/cmd/benchnodes starts its broker with it too.
type Child struct {
	name    string
	cmd     *exec.Cmd
	logPath string        // its output; "": this process's stderr
	done    chan struct{} // closed when Wait returned
	waitErr error         // set before done is closed
}

// StartChild starts argv with its stdout and stderr going to the file
// logPath ("": to this process's stderr). Cancelling ctx sends SIGTERM
// (SIGKILL after stopGrace), and the child gets SIGTERM if this process
// dies first.
func StartChild(ctx context.Context, name string, argv []string, logPath string) (*Child, error) {
	out := os.Stderr
	if logPath != "" {
		var err error
		if out, err = os.Create(logPath); err != nil {
			return nil, fmt.Errorf("%s: create log: %w", name, err)
		}
		defer out.Close() // the child writes through its own descriptor
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = stopGrace
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", name, argv[0], err)
	}
	c := &Child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Listening waits until addr accepts a connection, the child exits or wait passes.
func (c *Child) Listening(ctx context.Context, addr string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	return netwait.Listening(ctx, addr, func() error {
		if c.exited() {
			return fmt.Errorf("%s exited before listening on %s (%s)", c.name, addr, lastLine(c.logPath))
		}
		return nil
	})
}

func (c *Child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// wait returns the exited child's usage and exit code (-1 when killed by a signal).
func (c *Child) wait() (Usage, int, error) {
	<-c.done
	ps := c.cmd.ProcessState
	if ps == nil {
		return Usage{}, -1, fmt.Errorf("%s: %w", c.name, c.waitErr)
	}
	var err error
	if _, exit := errors.AsType[*exec.ExitError](c.waitErr); c.waitErr != nil && !exit {
		err = fmt.Errorf("%s: %w", c.name, c.waitErr)
	}
	u := Usage{CPU: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		u.MaxRSSKB, u.Switches = ru.Maxrss, ru.Nvcsw+ru.Nivcsw
	}
	return u, ps.ExitCode(), err
}

// Stop sends SIGTERM (SIGKILL after stopGrace) and returns the usage; a
// non-zero exit is an error. Once the child exited it only returns that.
func (c *Child) Stop() (Usage, error) {
	if !c.exited() {
		if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return Usage{}, fmt.Errorf("%s: SIGTERM: %w", c.name, err)
		}
		select {
		case <-c.done:
		case <-time.After(stopGrace):
			if err := c.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				return Usage{}, fmt.Errorf("%s: SIGKILL: %w", c.name, err)
			}
		}
	}
	u, code, err := c.wait()
	if err != nil {
		return u, err
	}
	if code != 0 {
		return u, fmt.Errorf("%s: exit code %d after SIGTERM (%s)", c.name, code, lastLine(c.logPath))
	}
	return u, nil
}

func stopAll(cs []*Child) (Usage, error) {
	var sum Usage
	var errs []error
	for _, c := range cs {
		u, err := c.Stop()
		sum.CPU += u.CPU
		sum.MaxRSSKB += u.MaxRSSKB
		sum.Switches += u.Switches
		errs = append(errs, err)
	}
	return sum, errors.Join(errs...)
}

// lastLine returns the last non-empty line of a log file, for error messages.
func lastLine(path string) string {
	if path == "" {
		return "its output is above"
	}
	b, err := os.ReadFile(path)
	switch last := lastOf(string(b)); {
	case err != nil:
		return "no log: " + err.Error()
	case last != "":
		return "log: " + last
	}
	return "empty log"
}

// lastOf is the last non-empty line of s, trimmed.
func lastOf(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// selfCPU is this process's CPU time so far, for the in-process load
// generator. Getrusage fails only for a bad pointer or an unknown who,
// neither possible here.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
