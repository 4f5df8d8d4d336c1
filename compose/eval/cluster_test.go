package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/distchat/distchat/chatnode/nodelog"
)

func TestClusterScenarioErrors(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"bad deployment", "name: x\ndeployment: mesh\n", `deployment: "mesh" is not one of single, cluster`},
		{"partition-broker on one broker", "name: x\nfaults: [{at: 1s, kind: partition-broker, target: broker1, for: 1s}]\n", "needs deployment: cluster"},
		{"cluster kill without target", "name: x\ndeployment: cluster\nfaults: [{at: 1s, kind: kill-broker, for: 1s}]\n", `target "" is not one of broker1, broker2, broker3`},
		{"cluster kill of a node", "name: x\ndeployment: cluster\nfaults: [{at: 1s, kind: kill-broker, target: alice, for: 1s}]\n", `target "alice" is not one of`},
		{"single kill of broker2", "name: x\nfaults: [{at: 1s, kind: kill-broker, target: broker2, for: 1s}]\n", `target must be empty or "broker"`},
		{"cluster without room log", "name: x\ndeployment: cluster\nroom_log: false\n", "cannot be off"},
		{"cluster partition of a single node name", "name: x\ndeployment: cluster\nfaults: [{at: 1s, kind: partition, target: zoe, for: 1s}]\n", `target "zoe" is not one of alice, bob, carol, dave, erin, frank`},
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

// clusterDocker is fakeDocker for the cluster deployment: it counts the
// docker-compose calls on eval-ha.yml and records them as fakeDocker does
// those on eval.yml.
type clusterDocker struct {
	fakeDocker
	haCalls int
}

func (c *clusterDocker) Run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	args = append([]string(nil), args...)
	for i, a := range args {
		if a == ClusterComposeFile {
			args[i] = "eval.yml"
			c.mu.Lock()
			c.haCalls++
			c.mu.Unlock()
		}
	}
	out, err := c.fakeDocker.Run(ctx, env, name, args...)
	if strings.Contains(strings.Join(args, " "), "logs --no-color broker1 broker2 broker3") {
		out = "broker1_1  | {\"event\":\"started\"}\nbroker2_1  | {\"event\":\"started\"}\nbroker3_1  | {\"event\":\"started\"}\n"
	}
	return out, err
}

// A cluster scenario runs compose/eval-ha.yml: three brokers, six nodes,
// its broker faults on the broker named, the partition on the brokers'
// network, reconnected under the aliases the routes use.
func TestRunClusterScenario(t *testing.T) {
	s, err := LoadScenario(writeScenario(t, `name: ha
deployment: cluster
duration: 10s
linger: 5s
faults:
  - {at: 1s, kind: kill-broker, target: broker2, for: 2s}
  - {at: 4s, kind: partition-broker, target: broker1, for: 2s}
  - {at: 7s, kind: partition, target: erin, for: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	fd := &clusterDocker{}
	r := Runner{ComposeFile: "eval.yml", Project: "p", Results: t.TempDir(), Cmd: fd,
		Sleep: func(context.Context, time.Duration) error { return nil }}
	if err := r.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"compose down -v --remove-orphans",
		"compose up -d broker1 broker2 broker3",
		"compose logs --no-color broker1 broker2 broker3",
		"compose up -d --no-recreate alice bob carol dave erin frank",
		"compose kill -s SIGKILL broker2",
		"compose start broker2",
		"compose ps -q broker1",
		"docker network disconnect p_cluster id-broker1",
		"compose ps -q broker1",
		"docker network connect --alias broker1 --alias broker1-peer p_cluster id-broker1",
		"compose ps -q erin",
		"docker network disconnect p_chat id-erin",
		"compose ps -q erin",
		"docker network connect p_chat id-erin",
	}
	got := strings.Join(fd.calls, "\n")
	if n := strings.Count(got, "compose "); fd.haCalls != n {
		t.Errorf("%d of %d docker-compose calls on %s", fd.haCalls, n, ClusterComposeFile)
	}
	if !strings.HasPrefix(got, strings.Join(want, "\n")) {
		t.Fatalf("commands:\n%s\nwant them to start with:\n%s", got, strings.Join(want, "\n"))
	}
	for _, n := range ClusterNodes {
		if !strings.Contains(got, "docker wait id-"+n) {
			t.Errorf("the runner did not wait for %s", n)
		}
	}
}

// logLines writes JSON log lines into dir/name.log.
func logLines(t *testing.T, dir, name string, lines ...map[string]any) {
	t.Helper()
	var b strings.Builder
	for _, l := range lines {
		js, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(js)
		b.WriteByte('\n')
	}
	if err := os.WriteFile(filepath.Join(dir, name+".log"), []byte(b.String()), 0o666); err != nil {
		t.Fatal(err)
	}
}

func recvAt(ms int64) map[string]any {
	return map[string]any{"event": nodelog.EventReceived, "ts_ns": ms*1e6 + 5e5, "recv_ns": ms * 1e6}
}

// The failover time of a node is its last delivery before the loss of
// its broker to its first after; nodes on other brokers are not counted;
// the windows go into the drill log.
func TestMeasureFailover(t *testing.T) {
	results := t.TempDir()
	logs := filepath.Join(results, "logs")
	if err := os.MkdirAll(logs, 0o777); err != nil {
		t.Fatal(err)
	}
	const kill = 10_000 // ms
	logLines(t, logs, "drill", map[string]any{"event": nodelog.EventFault, "fault": KillBroker, "phase": nodelog.PhaseStart,
		"target": "broker2", "ts_ns": int64(kill) * 1e6})
	lostAt := func(ms int64, broker string) map[string]any {
		return map[string]any{"event": nodelog.EventConnectionLost, "ts_ns": ms * 1e6, "broker": broker}
	}
	upAt := func(ms int64, broker string) map[string]any {
		return map[string]any{"event": nodelog.EventReconnected, "ts_ns": ms * 1e6, "broker": broker}
	}
	// bob: on broker2, 300 ms from last to first delivery.
	logLines(t, logs, "bob", recvAt(9_900), recvAt(kill-50), lostAt(kill+5, "tcp://broker2:1883"),
		upAt(kill+120, "tcp://broker3:1883"), recvAt(kill+250), recvAt(kill+260))
	// erin: on broker2, 2.5 s.
	logLines(t, logs, "erin", recvAt(kill-500), lostAt(kill+3, "tcp://broker2:1883"),
		upAt(kill+1_000, "tcp://broker3:1883"), recvAt(kill+2_000))
	// alice: on broker1, a pause only.
	logLines(t, logs, "alice", recvAt(kill-10), recvAt(kill+400))
	// carol: lost broker2 long before this kill (an earlier drill).
	logLines(t, logs, "carol", lostAt(2_000, "tcp://broker2:1883"), upAt(2_100, "tcp://broker3:1883"), recvAt(kill-10), recvAt(kill+5))

	reports, err := MeasureFailover("ha", logs)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 {
		t.Fatalf("%d reports, want 1", len(reports))
	}
	rep := reports[0]
	var got []string
	for _, nf := range rep.Nodes {
		got = append(got, fmt.Sprintf("%s %.0f %.0f %s", nf.Node, nf.FailoverMS, nf.ReconnectMS, nf.BrokerAfter))
	}
	if w := "bob 300 115 tcp://broker3:1883,erin 2500 997 tcp://broker3:1883"; strings.Join(got, ",") != w {
		t.Errorf("nodes %q, want %q", strings.Join(got, ","), w)
	}
	if rep.P50MS != 300 || rep.MaxMS != 2500 || rep.Met {
		t.Errorf("p50 %.0f, max %.0f, met %t; want 300, 2500, false", rep.P50MS, rep.MaxMS, rep.Met)
	}

	if err := writeFailover(results, reports); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(results, "failover.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "p50 300 ms, max 2500 ms over 2 nodes; target ≤ 2000 ms: MISSED") {
		t.Errorf("failover.md:\n%s", md)
	}
	var windows []string
	if err := scanLog(filepath.Join(logs, "drill.log"), func(l logLine) {
		if l.Fault == FailoverFault {
			windows = append(windows, fmt.Sprintf("%s %s %d", l.Target, l.Phase, l.TSNS/1e6))
		}
	}); err != nil {
		t.Fatal(err)
	}
	if w := "bob start 9950,bob end 10250,erin start 9500,erin end 12000"; strings.Join(windows, ",") != w {
		t.Errorf("drill log windows %q, want %q", strings.Join(windows, ","), w)
	}
}

// TestClusterEnvCoversTheComposeFile: every ${EVAL_CLUSTER_...} variable
// compose/eval-ha.yml reads is one the runner sets for a cluster scenario
// (all six nodes expected and waited for), and a single-broker scenario
// gets none of them.
func TestClusterEnvCoversTheComposeFile(t *testing.T) {
	cluster, err := LoadScenario(writeScenario(t, "name: x\ndeployment: cluster\nrate: 20\nduration: 10s\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Join(cluster.clusterEnv(), " ")
	for _, want := range []string{"EVAL_CLUSTER_EXPECT=1200", "EVAL_CLUSTER_PEERS=6"} {
		if !strings.Contains(env, want) {
			t.Errorf("cluster env %q lacks %s", env, want)
		}
	}
	compose, err := os.ReadFile(filepath.Join("..", "eval-ha.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range regexp.MustCompile(`\$\{(EVAL_CLUSTER_[A-Z_]+)`).FindAllStringSubmatch(string(compose), -1) {
		if !strings.Contains(env, ref[1]+"=") {
			t.Errorf("eval-ha.yml reads %s, which the runner does not set", ref[1])
		}
	}
	single, err := LoadScenario(writeScenario(t, "name: y\n"))
	if err != nil {
		t.Fatal(err)
	}
	if env := single.clusterEnv(); env != nil {
		t.Errorf("single-broker scenario gets cluster env %v", env)
	}
}
