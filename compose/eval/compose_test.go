package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// TestComposeZeroLossAcrossBrokerKill is the whole system as users run it:
// the FROM scratch images, compose/eval.yml, three bench nodes in their own
// containers, and the broker killed with SIGKILL mid-run. With the room log
// on, every node must receive every message every node sent.
func TestComposeZeroLossAcrossBrokerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts containers; skipped with -short")
	}
	for _, tool := range []string{"docker", "docker-compose"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: the compose integration test needs a Docker engine", tool)
		}
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine reachable: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	buildImages(ctx, t, "test")

	t.Setenv("DISTCHAT_TAG", "test")
	s := Scenario{Name: "compose-test", Description: "integration test", Rate: 50, Duration: 6 * time.Second,
		Size: 128, Linger: 15 * time.Second,
		Faults: []Fault{{At: 2 * time.Second, Kind: KillBroker, For: 2 * time.Second}}}
	s.defaults()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	r := Runner{ComposeFile: "../eval.yml", Project: "distchat-test", Results: t.TempDir(), Cmd: ExecCommander{},
		Progress: testWriter{t}}
	if err := r.Run(ctx, s); err != nil {
		t.Fatalf("run: %v", err)
	}
	sent, received := readBenchLogs(t, filepath.Join(r.Results, s.Name, "logs"))
	if len(sent) == 0 {
		t.Fatal("no node logged a sent message")
	}
	for _, node := range s.NodeNames() {
		var missing int
		for id := range sent {
			if !received[node][id] {
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s missed %d of %d messages", node, missing, len(sent))
		}
	}
}

// buildImages builds the static binaries and the two images with tag.
func buildImages(ctx context.Context, t *testing.T, tag string) {
	t.Helper()
	bin := t.TempDir()
	run := func(env []string, name string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run([]string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-o", bin+"/", "../broker/cmd/broker", "../chatnode/cmd/chatnode")
	for _, b := range []string{"broker", "chatnode"} {
		run(nil, "docker", "build", "-q", "-f", "Dockerfile", "--build-arg", "BIN="+b, "-t", "distchat/"+b+":"+tag, bin)
	}
}

// readBenchLogs returns the ids every node sent, and per receiving node the
// ids it received (live or through catch-up).
func readBenchLogs(t *testing.T, dir string) (sent map[string]bool, received map[string]map[string]bool) {
	t.Helper()
	sent = map[string]bool{}
	received = map[string]map[string]bool{}
	for _, n := range NodeServices[:DefaultNodes] {
		received[n] = map[string]bool{}
		f, err := os.Open(filepath.Join(dir, n+".log"))
		if err != nil {
			t.Fatalf("node log: %v", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec nodelog.Record
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			switch rec.Event {
			case nodelog.EventSent:
				sent[rec.ID] = true
			case nodelog.EventReceived:
				received[n][rec.ID] = true
			}
		}
		f.Close()
	}
	return sent, received
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
