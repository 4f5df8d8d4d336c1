package broker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/broker"
	"github.com/distchat/distchat/config"
)

func runMain(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = broker.Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestMainBadConfig(t *testing.T) {
	dir := t.TempDir()
	unknownKey := filepath.Join(dir, "unknown.yaml")
	if err := os.WriteFile(unknownKey, []byte("tcp: 127.0.0.1:0\nlisten_everywhere: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badger := filepath.Join(dir, "badger.yaml")
	if err := os.WriteFile(badger, []byte("storage: badger\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dupUsers := filepath.Join(dir, "users.yaml")
	hash, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	users := "users:\n  - {name: alice, password_hash: '" + string(hash) + "'}\n  - {name: alice, password_hash: '" + string(hash) + "'}\n"
	if err := os.WriteFile(dupUsers, []byte(users), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		lines []string // each expected in its own line of stderr
	}{
		{"bad address and log format", []string{"-tcp", "nonsense", "-log-format", "xml"},
			[]string{`tcp: "nonsense" is not host:port`, `log_format: "xml" is not one of json, text`}},
		{"unknown key", []string{"-config", unknownKey}, []string{"line 2: unknown key listen_everywhere"}},
		{"badger storage", []string{"-config", badger, "-tcp", "127.0.0.1:0"}, []string{`storage: "badger" is not built into this broker`}},
		{"missing file", []string{"-config", filepath.Join(dir, "nope.yaml")}, []string{"read config"}},
		{"duplicate user", []string{"-users", dupUsers, "-tcp", "127.0.0.1:0"}, []string{"duplicate user"}},
		{"stray argument", []string{"serve"}, []string{`unexpected argument "serve"`}},
		{"negative procs", []string{"-procs", "-1"}, []string{"-procs -1: want 0"}},
		{"cluster flags", []string{"-cluster-node", "b1", "-cluster-routes", "nats://b2:6222,http://b3:6222", "-cluster-replicas", "4", "-cluster-listen", "x"},
			[]string{`cluster.listen: "x" is not host:port`, "needs the scheme nats://", "cluster.replicas: 4 must be 1, 3 or 5", "cluster: needs -data DIR"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runMain(t, "", tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace on stderr:\n%s", stderr)
			}
			got := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(got) != len(tc.lines) {
				t.Errorf("%d lines on stderr, want %d:\n%s", len(got), len(tc.lines), stderr)
			}
			for _, want := range tc.lines {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
}

// TestMainFlags: a bad flag gets one line naming it and exit 2, not the
// whole usage; -h (however spelled) gets the whole usage and exit 0.
func TestMainFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // the whole of stderr for a bad flag; a line of it for help
	}{
		{"unknown flag", []string{"-nosuchflag"}, 2,
			"broker: flag provided but not defined: -nosuchflag (see broker -h)\n"},
		{"unknown flag after good ones", []string{"-tcp", "127.0.0.1:0", "-listen", "0.0.0.0:1883"}, 2,
			"broker: flag provided but not defined: -listen (see broker -h)\n"},
		{"missing value", []string{"-tcp"}, 2,
			"broker: flag needs an argument: -tcp (see broker -h)\n"},
		{"bad number", []string{"-max-inflight", "many"}, 2,
			"broker: invalid value \"many\" for flag -max-inflight: parse error (see broker -h)\n"},
		{"bad boolean", []string{"-room-log=maybe"}, 2,
			"broker: invalid boolean value \"maybe\" for -room-log: parse error (see broker -h)\n"},
		{"-h", []string{"-h"}, 0, "usage: broker [flags]"},
		{"-help", []string{"-help"}, 0, "usage: broker [flags]"},
		{"--help after a flag", []string{"-tcp", "127.0.0.1:0", "--help"}, 0, "usage: broker [flags]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, "", tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if tc.code != 0 {
				if stderr != tc.want {
					t.Errorf("stderr:\n%s\nwant exactly:\n%s", stderr, tc.want)
				}
				return
			}
			// The whole usage: the text, every flag with its default, the
			// -config flag config.Load adds.
			for _, want := range []string{tc.want, "hash-password", "Flags:", "-users file", "-max-inflight int",
				fmt.Sprintf("(default %d)", config.DefaultBroker().Limits.MaxInflight), "-config file"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("help lacks %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr, "flag provided") || strings.Contains(stderr, "(see broker -h)") {
				t.Errorf("help carries an error line:\n%s", stderr)
			}
		})
	}
}

func TestMainHashPassword(t *testing.T) {
	code, stdout, stderr := runMain(t, "alice-pw\n", "hash-password")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	hash := strings.TrimSpace(stdout)
	if err := bcrypt.CompareHashAndPassword([]byte(hash), []byte("alice-pw")); err != nil {
		t.Errorf("hash %q does not verify: %v", hash, err)
	}
	if code, _, stderr := runMain(t, "", "hash-password"); code != 2 || !strings.Contains(stderr, "standard input") {
		t.Errorf("empty password: exit %d, %s", code, stderr)
	}
}

// Main runs a broker until its context ends (SIGINT/SIGTERM in main), then
// closes it and returns 0; environment variables configure it.
func TestMainRunsUntilCancelled(t *testing.T) {
	t.Setenv("DISTCHAT_HTTP", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := broker.Main(ctx, []string{"-tcp", "127.0.0.1:0", "-data", t.TempDir()}, strings.NewReader(""), io.Discard, pw)
		if err := pw.Close(); err != nil {
			t.Error(err)
		}
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	started := false
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if m["event"] == "started" {
			started = true
			if m["http"] == "127.0.0.1:0" || m["http"] == "" {
				t.Errorf("started line: http %v, want the real address", m["http"])
			}
			cancel()
		}
	}
	if !started {
		t.Fatal("no started line")
	}
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel, want 0", code)
	}
}
