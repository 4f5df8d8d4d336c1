package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runMainEnv makes the test binary run the command instead of the tests,
// so the tests can send it real signals.
const runMainEnv = "DISTCHAT_ANALYSIS_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// TestSignalWhileSpooling sends the command SIGINT or SIGTERM while it
// copies an open standard input: it exits with 130 and leaves no temporary
// file.
func TestSignalWhileSpooling(t *testing.T) {
	logs, err := os.ReadFile("../../testdata/basic/a.log")
	if err != nil {
		t.Fatal(err)
	}
	// More than a pipe holds: the write returns once the command has read
	// most of it, so it is spooling when the signal comes.
	chunk := bytes.Repeat(logs, 1+(1<<20)/len(logs))
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(os.Args[0], "-q", "-out", filepath.Join(t.TempDir(), "out"), "-")
			cmd.Env = append(os.Environ(), runMainEnv+"=1", "TMPDIR="+tmp)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := false
			t.Cleanup(func() {
				if !exited { // a failed test: do not leave it running
					if err := cmd.Process.Kill(); err != nil {
						t.Log(err)
					}
				}
			})
			if _, err := stdin.Write(chunk); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case err = <-waited:
				exited = true
			case <-time.After(30 * time.Second):
				t.Fatalf("no exit 30 s after %s", sig)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 130 {
				t.Fatalf("after %s: %v, want exit code 130 (stderr %q)", sig, err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "interrupted in reading the input") {
				t.Errorf("stderr %q does not say where it was interrupted", stderr.String())
			}
			left, err := os.ReadDir(tmp)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}
