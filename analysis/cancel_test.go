package analysis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// basicLogs is testdata/basic's node logs in one stream, as standard input
// would bring them.
func basicLogs(t *testing.T) string {
	t.Helper()
	var all []byte
	for _, f := range []string{"a.log", "b.log", "c.log"} {
		b, err := os.ReadFile(filepath.Join("testdata/basic", f))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return string(all)
}

// privateTemp points the temporary files of this test's analysis at a
// directory of its own and returns it, so the test can see them.
func privateTemp(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	return dir
}

// names lists dir's entries.
func names(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// mainResult is what Main returned.
type mainResult struct {
	code           int
	stdout, stderr string
}

// startMain runs Main on a goroutine and returns where its result arrives.
func startMain(ctx context.Context, args []string, stdin io.Reader) <-chan mainResult {
	done := make(chan mainResult, 1)
	go func() {
		var stdout, stderr strings.Builder
		code := Main(ctx, args, stdin, &stdout, &stderr)
		done <- mainResult{code, stdout.String(), stderr.String()}
	}()
	return done
}

// waitMain waits for Main's result, failing the test after a deadline.
func waitMain(t *testing.T, done <-chan mainResult) mainResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("Main did not return 20 s after the context ended")
		return mainResult{}
	}
}

// TestInterruptWhileSpoolingStdin: standard input that stays open (a
// writer that sends some lines, then nothing) does not keep the analysis
// from stopping when its context ends; the spooled copy is removed and
// the exit code is 130.
func TestInterruptWhileSpoolingStdin(t *testing.T) {
	tmp := privateTemp(t)
	out := t.TempDir()
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() }) // lets the spooling goroutine's read end
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := startMain(ctx, []string{"-q", "-out", out, "-"}, pr)
	// An io.Pipe write returns once the reader has taken the bytes: the
	// analysis is spooling, and its temporary file exists.
	if _, err := pw.Write([]byte(basicLogs(t))); err != nil {
		t.Fatal(err)
	}
	if got := names(t, tmp); len(got) != 1 || !strings.HasPrefix(got[0], "analysis-input-") {
		t.Fatalf("temporary files while spooling: %q, want one analysis-input-*", got)
	}
	cancel()
	r := waitMain(t, done)
	if r.code != exitInterrupted {
		t.Errorf("exit code %d, want %d (stderr %q)", r.code, exitInterrupted, r.stderr)
	}
	if want := "analysis: interrupted in reading the input: context canceled\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
	if got := names(t, tmp); len(got) != 0 {
		t.Errorf("temporary files left: %q", got)
	}
	if got := names(t, out); len(got) != 0 {
		t.Errorf("outputs written by an interrupted analysis: %q", got)
	}
}

// TestInterruptWaitingForPipeWriter: a named pipe that no writer ever opens
// blocks opening it; the analysis still stops when its context ends.
func TestInterruptWaitingForPipeWriter(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "logs.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	t.Cleanup(func() {
		// An open of the pipe still blocked is let go by a writer's open
		// (and closes what it opened); with none blocked this one fails.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := startMain(ctx, []string{"-q", "-no-plots", "-out", t.TempDir(), fifo}, nil)
	cancel() // whether the open has begun or not, the analysis must stop
	r := waitMain(t, done)
	if r.code != exitInterrupted || !strings.Contains(r.stderr, "interrupted in reading the input") {
		t.Fatalf("exit code %d, stderr %q: want %d and an interruption in reading the input", r.code, r.stderr, exitInterrupted)
	}
}

// TestInterruptEachStage ends the context as the analysis enters each
// stage: it stops there, says where, removes its temporary file (standard
// input is spooled), and leaves no partial output.
func TestInterruptEachStage(t *testing.T) {
	logs := basicLogs(t)
	tests := []struct {
		stage stage
		plots bool
		want  []string // the outputs: the complete files written before the stage
	}{
		{stageInput, true, nil},
		{stagePass1, true, nil},
		{stagePass2, true, nil},
		{stageOutput, true, []string{"messages.csv", "summary.csv", "summary.json"}},
		{stageOutput, false, []string{"messages.csv", "summary.csv", "summary.json"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/plots=%v", tt.stage, tt.plots), func(t *testing.T) {
			tmp := privateTemp(t)
			out := filepath.Join(t.TempDir(), "out")
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			var entered []stage
			opt := Options{Inputs: []string{"-"}, Out: out, NoPlots: !tt.plots, enter: func(s stage) {
				entered = append(entered, s)
				if s == tt.stage {
					cancel()
				}
			}}
			_, _, err := analyse(ctx, opt, strings.NewReader(logs))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("error %v, want context.Canceled", err)
			}
			if want := "interrupted in " + tt.stage.String() + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q, want it to start %q", err, want)
			}
			if last := entered[len(entered)-1]; last != tt.stage {
				t.Errorf("went on to %s after the context ended in %s", last, tt.stage)
			}
			if got := names(t, tmp); len(got) != 0 {
				t.Errorf("temporary files left: %q", got)
			}
			if _, err := os.Stat(out); tt.want == nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output dir made by an analysis stopped before its outputs: %v", err)
			}
			if tt.want != nil {
				got := names(t, out)
				if strings.Join(got, " ") != strings.Join(tt.want, " ") { // no .partial, no plot, no report
					t.Errorf("outputs %q, want %q", got, tt.want)
				}
			}
		})
	}
}

// TestWindowValidation: negative -warmup or -cooldown is a usage error,
// one line, exit code 2; Run refuses them too.
func TestWindowValidation(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string // stderr's first line
	}{
		{"negative warmup", []string{"-warmup", "-1s"}, exitUsage,
			"analysis: -warmup -1s is negative: give the time to leave out at the start, 0 for none"},
		{"negative cooldown", []string{"-cooldown", "-250ms"}, exitUsage,
			"analysis: -cooldown -250ms is negative: give the time to leave out at the end, 0 for none"},
		{"both negative", []string{"-warmup", "-1s", "-cooldown", "-1s"}, exitUsage,
			"analysis: -warmup -1s is negative: give the time to leave out at the start, 0 for none"},
		{"not a duration", []string{"-warmup", "soon"}, exitUsage,
			`invalid value "soon" for flag -warmup: parse error`},
		{"zero", []string{"-warmup", "0", "-cooldown", "0s"}, exitOK, ""},
		{"positive", []string{"-warmup", "1ms", "-cooldown", "1ms"}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-q", "-no-plots", "-out", t.TempDir()}, tt.args...)
			var stdout, stderr strings.Builder
			code := Main(context.Background(), append(args, "testdata/basic"), strings.NewReader(""), &stdout, &stderr)
			if code != tt.code {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, tt.code, stderr.String())
			}
			first, _, _ := strings.Cut(stderr.String(), "\n")
			if first != tt.want {
				t.Errorf("stderr's first line %q, want %q", first, tt.want)
			}
			if tt.code == exitUsage && tt.name != "not a duration" && strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("stderr %q, want one line", stderr.String())
			}
		})
	}
	for _, opt := range []Options{{Warmup: -time.Second}, {Cooldown: -time.Nanosecond}} {
		opt.Inputs, opt.Out = []string{"testdata/basic"}, t.TempDir()
		if _, err := Run(context.Background(), opt, nil); err == nil || !strings.Contains(err.Error(), "is negative") {
			t.Errorf("Run(%+v) = %v, want a negative window refused", opt, err)
		}
	}
}

// TestUsageDocumentsExitCodes: -h names every exit code.
func TestUsageDocumentsExitCodes(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := Main(context.Background(), []string{"-h"}, strings.NewReader(""), &stdout, &stderr); code != exitOK {
		t.Fatalf("-h: exit code %d", code)
	}
	for _, want := range []string{"Exit codes: 0 done, 1 the analysis failed", "2 bad command line", "130 interrupted", "SIGTERM"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("-h does not say %q", want)
		}
	}
}

// TestGenInterrupted: analysis gen stops when its context ends, says the
// logs are incomplete, and exits with 130.
func TestGenInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := filepath.Join(t.TempDir(), "logs")
	r := waitMain(t, startMain(ctx, []string{"gen", "-lines", "100000", "-out", out}, nil))
	if r.code != exitInterrupted || r.stderr != "analysis gen: interrupted: the logs in "+out+" are incomplete\n" {
		t.Fatalf("exit code %d, stderr %q: want %d and the logs called incomplete", r.code, r.stderr, exitInterrupted)
	}
}
