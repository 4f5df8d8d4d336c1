package brokertest

import (
	"bufio"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Build compiles the broker command into a temporary directory and returns
// its path, for tests that SIGKILL the broker or measure its CPU and memory.
func Build(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "broker")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/distchat/distchat/broker/cmd/broker").CombinedOutput(); err != nil {
		t.Fatalf("brokertest: build broker: %v\n%s", err, out)
	}
	return bin
}

// Process is the broker binary run as a child process with Args: Start, then
// Kill (SIGKILL) or Stop (SIGTERM), and again; it is killed at the test's end.
type Process struct {
	Bin  string
	Args []string
	Env  []string // the broker's whole environment (exec.Cmd.Env); nil: this process's
	// Addr (the MQTT listener, useful with -tcp 127.0.0.1:0) and Procs
	// (GOMAXPROCS) are read by Start from the broker's "started" log line.
	Addr  string
	Procs int

	cmd    *exec.Cmd
	exited chan error
}

// Start runs the broker and returns once it reports that it is serving.
func (p *Process) Start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Env = p.Env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("brokertest: start broker: %v", err)
	}
	started := make(chan startedLine, 1)
	p.cmd, p.exited = cmd, make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line startedLine
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Event == "started" {
				started <- line
			}
		}
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if p.cmd == cmd { // not killed or stopped by the test
			p.Kill(t)
		}
	})
	select {
	case line := <-started:
		p.Addr, p.Procs = line.TCP, line.Procs
	case err := <-p.exited:
		t.Fatalf("brokertest: the broker exited before serving: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("brokertest: the broker did not start within 20 s")
	}
}

// startedLine is what Start reads from the broker's "started" log line.
type startedLine struct {
	Event, TCP string
	Procs      int
}

// Kill sends SIGKILL and returns how the process ended ("signal: killed").
func (p *Process) Kill(t testing.TB) error {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatalf("brokertest: kill broker: %v", err)
	}
	err := <-p.exited
	if _, exit := errors.AsType[*exec.ExitError](err); err != nil && !exit {
		t.Errorf("brokertest: broker: %v", err)
	}
	p.cmd = nil
	return err
}

// Stop sends SIGTERM, waits for a clean exit and returns its CPU time and peak RSS in KiB.
func (p *Process) Stop(t testing.TB) (cpu time.Duration, maxRSSKB int64) {
	t.Helper()
	cmd := p.cmd
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("brokertest: stop broker: %v", err)
	}
	if err := <-p.exited; err != nil {
		t.Errorf("brokertest: broker exit after SIGTERM: %v", err)
	}
	p.cmd = nil
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		maxRSSKB = ru.Maxrss
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), maxRSSKB
}
