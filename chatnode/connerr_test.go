package chatnode

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/brokertest"
)

// TestBadBenchFlags: every nonsensical load value is refused before any
// connection, in one line naming the flag, with exit code 2.
func TestBadBenchFlags(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-rate", "-5"}, "-rate: -5 must be a number ≥ 0"},
		{[]string{"-rate", "NaN"}, "-rate: NaN must be a number"},
		{[]string{"-size", "-1"}, "-size: -1 cannot be negative"},
		{[]string{"-size", "999999"}, "-size: 999999 is over -max-payload"},
		{[]string{"-count", "-3"}, "-count: -3 cannot be negative"},
		{[]string{"-duration", "-1s"}, "-duration: -1s cannot be negative"},
		{[]string{"-count", "5", "-duration", "1s"}, "-count and -duration: give one, not both"},
		{[]string{"-peers", "0"}, "-peers: 0 must be at least 1"},
		{[]string{"-linger", "-2s"}, "-linger: -2s cannot be negative"},
		{[]string{"-expect", "-1"}, "-expect: -1 cannot be negative"},
		{[]string{"-start-timeout", "0s"}, "-start-timeout: 0s must be positive"},
		{[]string{"-window", "-1"}, "window: -1 must be between 1 and 1000"},
		{[]string{"-history", "-1"}, "history: -1 cannot be negative"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errs bytes.Buffer
			args := append([]string{"bench", "-broker", "tcp://127.0.0.1:1", "-nick", "alice"}, tt.args...)
			if code := Main(context.Background(), args, strings.NewReader(""), &out, &errs); code != exitUsage {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, exitUsage, errs.String())
			}
			lines := strings.Split(strings.TrimSpace(errs.String()), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "chatnode: "+tt.want) {
				t.Errorf("stderr is not the one-line error %q and the -h hint:\n%s", tt.want, errs.String())
			}
		})
	}
}

// TestExitCodesInHelp: both modes' -h lists the exit codes.
func TestExitCodesInHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"bench", "-h"}} {
		var out, errs bytes.Buffer
		if code := Main(context.Background(), args, strings.NewReader(""), &out, &errs); code != exitOK {
			t.Errorf("%v: exit %d", args, code)
		}
		for _, want := range []string{"Exit codes: 0 ok", "2 bad flags", "3 refused by the broker"} {
			if !strings.Contains(errs.String(), want) {
				t.Errorf("%v lacks %q:\n%s", args, want, errs.String())
			}
		}
	}
}

// TestRefusedByBroker: a wrong password and a client id of another user are
// each named in one line, the node stops by itself (its input never ends)
// with exit code 3, and the broker saw one attempt only.
func TestRefusedByBroker(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = brokertest.Users(t, map[string]string{"alice": "right", "bob": "bobs"}, "*")
	for _, tt := range []struct {
		name  string
		bench bool
		args  []string
		want  string
	}{
		{"wrong password", false, []string{"-password", "wrong"}, "wrong user or password"},
		{"wrong password bench", true, []string{"-password", "wrong"}, "wrong user or password"},
		{"id of another user", false, []string{"-password", "right", "-client-id", "bob"}, "not authorized"},
		{"id of another user bench", true, []string{"-password", "right", "-client-id", "bob"}, "not authorized"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := brokertest.Start(t, cfg)
			args := append([]string{"-broker", b.URL, "-nick", "alice", "-room", "lobby", "-log", filepath.Join(t.TempDir(), "n.log")}, tt.args...)
			var screen seenScreen
			var errs lockedBuf
			in, never := io.Pipe() // input that never ends: only the refusal stops the node
			t.Cleanup(func() { never.Close() })
			done := make(chan int, 1)
			go func() {
				if tt.bench {
					done <- Main(context.Background(), append([]string{"bench", "-start-timeout", "30s"}, args...), in, &screen, &errs)
					return
				}
				done <- Main(context.Background(), args, in, &screen, &errs)
			}()
			var code int
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("the node kept going after the refusal; screen:\n%s\nstderr:\n%s", screen.String(), errs.String())
			}
			if code != exitNoBroker {
				t.Errorf("exit %d, want %d", code, exitNoBroker)
			}
			shown := screen.String()
			if tt.bench {
				shown = errs.String()
			}
			if !strings.Contains(shown, tt.want) {
				t.Errorf("%q not shown:\n%s", tt.want, shown)
			}
			if strings.Contains(shown, "right") || strings.Contains(shown, "wrong\n") {
				t.Errorf("the password was shown:\n%s", shown)
			}
			if n := b.Stats(t).AuthFailures; n != 1 {
				t.Errorf("broker counted %d refused connects, want 1 (no retries)", n)
			}
		})
	}
}

// closedPort is a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return "tcp://" + addr
}

// TestUnreachableBroker: with nothing listening, both modes say so once
// (however many attempts fail) and end with exit code 3: bench after
// -start-timeout, interactive when its input ends, also while a typed line
// waits for the first connection.
func TestUnreachableBroker(t *testing.T) {
	url := closedPort(t)
	want := "cannot reach broker at " + url + ": "
	t.Run("bench", func(t *testing.T) {
		var out bytes.Buffer
		var errs lockedBuf
		args := []string{"bench", "-broker", url, "-nick", "alice", "-start-timeout", "2500ms", "-log", filepath.Join(t.TempDir(), "n.log")}
		if code := Main(context.Background(), args, strings.NewReader(""), &out, &errs); code != exitNoBroker {
			t.Errorf("exit %d, want %d", code, exitNoBroker)
		}
		var told, final int
		for _, l := range strings.Split(errs.String(), "\n") {
			if strings.HasPrefix(l, "chatnode bench: "+want) && strings.HasSuffix(l, "; still trying") {
				told++
			}
			if strings.HasPrefix(l, "chatnode bench: not connected within -start-timeout 2.5s: "+want) {
				final++
			}
		}
		if told != 1 || final != 1 {
			t.Errorf("told %d times and %d final lines, want 1 and 1:\n%s", told, final, errs.String())
		}
	})
	t.Run("interactive", func(t *testing.T) {
		var screen seenScreen
		var errs lockedBuf
		in, w := io.Pipe()
		done := make(chan int, 1)
		go func() {
			done <- Main(context.Background(), []string{"-broker", url, "-nick", "alice", "-room", "lobby", "-log", filepath.Join(t.TempDir(), "n.log")}, in, &screen, &errs)
		}()
		screen.waitShown(t, "alice", want)
		if _, err := io.WriteString(w, "hello\n"); err != nil { // waits for the first connection
			t.Fatal(err)
		}
		if err := w.Close(); err != nil { // input ends while never connected
			t.Fatal(err)
		}
		var code int
		select {
		case code = <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("the node did not end with its input; screen:\n%s", screen.String())
		}
		if code != exitNoBroker {
			t.Errorf("exit %d, want %d", code, exitNoBroker)
		}
		shown := screen.String()
		if n := strings.Count(shown, "still trying"); n != 1 {
			t.Errorf("told %d times, want once:\n%s", n, shown)
		}
		if !strings.Contains(shown, "never connected: "+want) {
			t.Errorf("the reason is not given at the end:\n%s", shown)
		}
	})
}

// lockedBuf is a bytes.Buffer safe for the node's concurrent writers.
type lockedBuf struct{ seenScreen }
