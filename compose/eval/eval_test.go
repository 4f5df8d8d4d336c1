package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// fakeDocker records every command instead of running it.
type fakeDocker struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeDocker) Run(_ context.Context, _ []string, name string, args ...string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := name + " " + strings.Join(args, " ")
	call = strings.Replace(call, "docker-compose -p p -f eval.yml ", "compose ", 1)
	f.calls = append(f.calls, call)
	switch {
	case strings.HasPrefix(call, "compose ps -q "):
		return "id-" + strings.TrimPrefix(call, "compose ps -q ") + "\n", nil
	case strings.HasPrefix(call, "docker wait "):
		return "0\n", nil
	}
	return "", nil
}

func writeScenario(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.yaml")
	if err := os.WriteFile(p, []byte(body), 0o666); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadScenarioErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"unknown key", "name: x\nrat: 5\n", "unknown key rat"},
		{"bad kind", "name: x\nfaults: [{at: 1s, kind: explode, for: 1s}]\n", "unknown kind"},
		{"partition without target", "name: x\nfaults: [{at: 1s, kind: partition, for: 1s}]\n", `target "" is not one of`},
		{"fault after run", "name: x\nduration: 5s\nlinger: 1s\nfaults: [{at: 5s, kind: kill-broker, for: 2s}]\n", "ends after the run"},
		{"bad name", "name: a/b\n", "name:"},
		{"bad rate", "name: x\nrate: -1\n", "rate:"},
		{"bad durability", "name: x\ndurability: disk\n", `durability: "disk" is not one of process, machine`},
		{"too many nodes", "name: x\nnodes: 11\n", "nodes: 11 must be between 1 and 10"},
		{"kill a node not running", "name: x\nfaults: [{at: 1s, kind: kill-node, target: dave, for: 1s}]\n", `target "dave" is not one of alice, bob, carol`},
		{"bad group", "name: x\ngroups: [a/b]\n", `groups: "a/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadScenario(writeScenario(t, tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestShippedScenariosLoad(t *testing.T) {
	files, err := filepath.Glob("../scenarios/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("want at least 3 shipped scenarios, got %v (%v)", files, err)
	}
	for _, f := range files {
		if _, err := LoadScenario(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestRunAppliesFaultsInOrderAndRecordsThem(t *testing.T) {
	s, err := LoadScenario(writeScenario(t, `name: drill
duration: 10s
linger: 5s
faults:
  - {at: 6s, kind: partition, target: bob, for: 2s}
  - {at: 2s, kind: kill-broker, for: 3s}
`))
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDocker{}
	var slept []time.Duration
	r := Runner{ComposeFile: "eval.yml", Project: "p", Results: t.TempDir(), Cmd: fd,
		Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }}
	if err := r.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"compose down -v --remove-orphans",
		"compose up -d broker",
		"compose up -d --no-recreate alice bob carol",
		"compose kill -s SIGKILL broker",
		"compose start broker",
		"compose ps -q bob",
		"docker network disconnect p_chat id-bob",
		"compose ps -q bob",
		"docker network connect p_chat id-bob",
		"compose ps -q alice", "docker wait id-alice",
		"compose ps -q bob", "docker wait id-bob",
		"compose ps -q carol", "docker wait id-carol",
		"compose logs --no-color --timestamps",
		"compose down -v --remove-orphans",
	}
	if strings.Join(fd.calls, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands:\n%s\nwant:\n%s", strings.Join(fd.calls, "\n"), strings.Join(want, "\n"))
	}
	if got := []time.Duration{2 * time.Second, 3 * time.Second, time.Second, 2 * time.Second}; !equalDurations(slept, got) {
		t.Fatalf("slept %v, want %v", slept, got)
	}
	f, err := os.Open(filepath.Join(r.Results, "drill", "logs", "drill.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var got []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec nodelog.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("drill log line %q: %v", sc.Text(), err)
		}
		if rec.Event != nodelog.EventFault || rec.Run != "drill" || rec.TSNS == 0 {
			t.Fatalf("drill log line %+v lacks event, run or ts_ns", rec)
		}
		got = append(got, rec.Fault+" "+rec.Target+" "+rec.Phase)
	}
	wantLog := "kill-broker broker start,kill-broker broker end,partition bob start,partition bob end"
	if strings.Join(got, ",") != wantLog {
		t.Fatalf("drill log %q, want %q", strings.Join(got, ","), wantLog)
	}
}

// TestRunTenNodesKillNodeAndGroups: a scenario with nodes: 10 starts and
// waits for ten node services, kill-node kills a node and starts the same
// container again, and the drill log opens with the scenario's groups.
func TestRunTenNodesKillNodeAndGroups(t *testing.T) {
	s, err := LoadScenario(writeScenario(t, `name: crash
duration: 5s
linger: 5s
nodes: 10
groups: [faults, scale-nodes]
faults:
  - {at: 2s, kind: kill-node, target: judy, for: 3s}
`))
	if err != nil {
		t.Fatal(err)
	}
	fd := &fakeDocker{}
	r := Runner{ComposeFile: "eval.yml", Project: "p", Results: t.TempDir(), Cmd: fd,
		Sleep: func(context.Context, time.Duration) error { return nil }}
	if err := r.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	calls := strings.Join(fd.calls, "\n")
	for _, want := range []string{
		"compose up -d --no-recreate " + strings.Join(NodeServices, " ") + "\n",
		"compose kill -s SIGKILL judy\ncompose start judy\n",
		"compose ps -q judy\ndocker wait id-judy\n",
	} {
		if !strings.Contains(calls, want) {
			t.Errorf("commands lack %q:\n%s", want, calls)
		}
	}
	if got := strings.Count(calls, "docker wait "); got != 10 {
		t.Errorf("%d docker waits, want 10", got)
	}
	// 100 msg/s for 5 s from 10 nodes, one of them twice: at most 5500.
	if env := strings.Join(s.Env("/logs"), " "); !strings.Contains(env, "EVAL_PEERS=10 EVAL_EXPECT=5501") {
		t.Errorf("env lacks EVAL_PEERS=10 EVAL_EXPECT=5501: %s", env)
	}
	b, err := os.ReadFile(filepath.Join(r.Results, "crash", "logs", "drill.log"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	var rec nodelog.Record
	if err := json.Unmarshal([]byte(first), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Event != nodelog.EventScenario || rec.Run != "crash" || rec.Group != "faults,scale-nodes" {
		t.Fatalf("drill log's first line %+v, want the scenario line with its groups", rec)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
