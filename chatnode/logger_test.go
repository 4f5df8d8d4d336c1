package chatnode

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/distchat/distchat/config"
)

// TestLoggerOutputs: where the node's log lines go in each mode, and that
// closing the logger writes every buffered line.
func TestLoggerOutputs(t *testing.T) {
	for _, tt := range []struct {
		name       string
		file       bool
		mode       stderrLog
		wantFile   []string // events in the -log file
		wantStderr []string // events on stderr
	}{
		{"bench with a log file", true, stderrFull, []string{"info_line", "warn_line"}, []string{"warn_line"}},
		{"bench without a log file", false, stderrFull, nil, []string{"info_line", "warn_line"}},
		{"interactive, stderr no terminal, with a log file", true, stderrWarnings, []string{"info_line", "warn_line"}, []string{"warn_line"}},
		{"interactive, stderr no terminal, without a log file", false, stderrWarnings, nil, []string{"warn_line"}},
		{"interactive on a terminal with a log file", true, stderrNone, []string{"info_line", "warn_line"}, nil},
		{"interactive on a terminal without a log file", false, stderrNone, nil, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.DefaultNode()
			cfg.Nick, cfg.Run = "alice", "r1"
			if tt.file {
				cfg.Log = filepath.Join(t.TempDir(), "alice.log")
			}
			var stderr bytes.Buffer
			log, closeLog, err := newLogger(cfg, &stderr, tt.mode)
			if err != nil {
				t.Fatal(err)
			}
			log.WithField("event", "info_line").Info("i")
			log.WithField("event", "warn_line").Warn("w")
			closeLog()
			checkEvents(t, "stderr", stderr.String(), tt.wantStderr)
			if tt.file {
				b, err := os.ReadFile(cfg.Log)
				if err != nil {
					t.Fatal(err)
				}
				checkEvents(t, "log file", string(b), tt.wantFile)
			}
		})
	}
}

func checkEvents(t *testing.T, where, text string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if text == "" {
		lines = nil
	}
	if len(lines) != len(want) {
		t.Fatalf("%s: %d lines %q, want events %v", where, len(lines), text, want)
	}
	for i, ev := range want {
		if !strings.Contains(lines[i], `"event":"`+ev+`"`) || !strings.Contains(lines[i], `"node":"alice"`) ||
			!strings.Contains(lines[i], `"ts_ns":`) {
			t.Errorf("%s line %d: %s, want event %s with node and ts_ns", where, i, lines[i], ev)
		}
	}
}

// TestInteractiveStderr: an interactive node's log reaches stderr only at
// -log-level debug or when stderr is no terminal.
func TestInteractiveStderr(t *testing.T) {
	for _, tt := range []struct {
		level string
		tty   bool
		want  stderrLog
	}{
		{"info", false, stderrWarnings},
		{"debug", false, stderrFull},
		{"info", true, stderrNone},
		{"warn", true, stderrNone},
		{"debug", true, stderrFull},
	} {
		cfg := config.DefaultNode()
		cfg.LogLevel = tt.level
		if got := interactiveStderr(cfg, tt.tty); got != tt.want {
			t.Errorf("level %s, terminal %v: got %s, want %s", tt.level, tt.tty, got, tt.want)
		}
	}
}

// String names a stderrLog in the tests' messages.
func (m stderrLog) String() string {
	switch m {
	case stderrFull:
		return "full"
	case stderrWarnings:
		return "warnings"
	case stderrNone:
		return "none"
	}
	return "stderrLog(" + strconv.Itoa(int(m)) + ")"
}
