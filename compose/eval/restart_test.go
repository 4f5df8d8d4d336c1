package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// restartDocker is clusterDocker that answers docker port with a
// loopback address per container.
type restartDocker struct{ clusterDocker }

func (d *restartDocker) Run(ctx context.Context, env []string, name string, args ...string) (string, error) {
	out, err := d.clusterDocker.Run(ctx, env, name, args...)
	switch {
	case name == "docker" && len(args) == 3 && args[0] == "port":
		return "127.0.0.1:" + strings.TrimPrefix(args[1], "id-") + "\n[::1]:" + args[1] + "\n", err
	case name == "docker" && len(args) == 7 && args[0] == "ps" && args[4] == "label=com.docker.compose.project=p":
		return "id-" + strings.TrimPrefix(args[6], "label=com.docker.compose.service=") + "\n", err
	}
	return out, err
}

// healthz is a fake /healthz: each address fails its first failures
// calls, then answers OK; it records the calls, each with the commands
// run before it.
type healthz struct {
	mu       sync.Mutex
	failures int
	seen     map[string]int
	calls    []string
}

func (h *healthz) check(d *restartDocker) func(context.Context, string) error {
	return func(_ context.Context, addr string) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.seen == nil {
			h.seen = map[string]int{}
		}
		h.seen[addr]++
		d.mu.Lock()
		h.calls = append(h.calls, addr+" after "+d.calls[len(d.calls)-1])
		d.mu.Unlock()
		if h.seen[addr] <= h.failures {
			return errors.New("503 unhealthy")
		}
		return nil
	}
}

// A rolling restart: each broker stopped with docker stop (SIGTERM, the
// compose files' grace period), started again, and its restart ends only
// once its /healthz, on the port docker publishes for it, answers OK; the
// next broker's stop comes after that. The drill log has each window.
func TestRunRollingRestart(t *testing.T) {
	s, err := LoadScenario(writeScenario(t, `name: roll
deployment: cluster
duration: 30s
linger: 5s
faults:
  - {at: 2s, kind: restart-broker, target: broker1, for: 1s}
  - {at: 5s, kind: restart-broker, target: broker2, for: 1s}
  - {at: 8s, kind: restart-broker, target: broker3, for: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	fd := &restartDocker{}
	h := &healthz{failures: 2}
	r := Runner{ComposeFile: "eval.yml", Project: "p", Results: t.TempDir(), Cmd: fd, Healthz: h.check(fd),
		Sleep: func(context.Context, time.Duration) error { return nil }}
	if err := r.Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	ps := "docker ps -a -q --filter label=com.docker.compose.project=p --filter label=com.docker.compose.service="
	want := []string{
		ps + "broker1", "docker stop -t 20 id-broker1", "docker start id-broker1", "docker port id-broker1 8080",
		ps + "broker2", "docker stop -t 20 id-broker2", "docker start id-broker2", "docker port id-broker2 8080",
		ps + "broker3", "docker stop -t 20 id-broker3", "docker start id-broker3", "docker port id-broker3 8080",
		"compose ps -q alice",
	}
	got := strings.Join(fd.calls, "\n")
	if i := strings.Index(got, want[0]); i < 0 || !strings.HasPrefix(got[i:], strings.Join(want, "\n")) {
		t.Fatalf("commands:\n%s\nwant in a row:\n%s", got, strings.Join(want, "\n"))
	}
	var wantHealth []string
	for _, b := range ClusterBrokers {
		for range 3 {
			wantHealth = append(wantHealth, "127.0.0.1:"+b+" after docker port id-"+b+" 8080")
		}
	}
	if strings.Join(h.calls, "\n") != strings.Join(wantHealth, "\n") {
		t.Fatalf("healthz calls:\n%s\nwant:\n%s", strings.Join(h.calls, "\n"), strings.Join(wantHealth, "\n"))
	}
	var windows []string
	for _, rec := range drillFaults(t, filepath.Join(r.Results, "roll", "logs", "drill.log")) {
		windows = append(windows, rec.Target+" "+rec.Phase)
	}
	if w := "broker1 start,broker1 end,broker2 start,broker2 end,broker3 start,broker3 end"; strings.Join(windows, ",") != w {
		t.Fatalf("drill log %q, want %q", strings.Join(windows, ","), w)
	}
}

// drillFaults reads the fault lines of a drill log.
func drillFaults(t *testing.T, path string) []nodelog.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var out []nodelog.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec nodelog.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("drill log line %q: %v", sc.Text(), err)
		}
		if rec.Event == nodelog.EventFault {
			out = append(out, rec)
		}
	}
	return out
}

// A broker whose /healthz never answers OK fails the run with its last
// answer once the wait's deadline passes, and the deployment is still
// torn down.
func TestRestartFailsWhenNeverHealthy(t *testing.T) {
	s, err := LoadScenario(writeScenario(t, `name: roll
deployment: cluster
faults:
  - {at: 2s, kind: restart-broker, target: broker2, for: 1s}
`))
	if err != nil {
		t.Fatal(err)
	}
	fd := &restartDocker{}
	polls := 0
	r := Runner{ComposeFile: "eval.yml", Project: "p", Results: t.TempDir(), Cmd: fd,
		Healthz: func(context.Context, string) error { return errors.New("503 unhealthy: MQTT TCP listener retrying") },
		Sleep: func(_ context.Context, d time.Duration) error {
			if d != healthPoll {
				return nil
			}
			if polls++; polls == 5 {
				return context.DeadlineExceeded // the wait's own deadline
			}
			return nil
		}}
	err = r.Run(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), "broker2 not healthy within 2m0s: 503 unhealthy: MQTT TCP listener retrying") {
		t.Fatalf("error %v, want broker2 not healthy with the last answer", err)
	}
	if !strings.HasSuffix(strings.Join(fd.calls, "\n"), "compose down -v --remove-orphans") {
		t.Errorf("the deployment was not torn down:\n%s", strings.Join(fd.calls, "\n"))
	}
}

// Restarts of a cluster overlap only by mistake: two brokers down at once
// is not a rolling restart.
func TestOverlappingRestartsRefused(t *testing.T) {
	_, err := LoadScenario(writeScenario(t, `name: roll
deployment: cluster
faults:
  - {at: 2s, kind: restart-broker, target: broker1, for: 5s}
  - {at: 4s, kind: restart-broker, target: broker2, for: 1s}
`))
	if err == nil || !strings.Contains(err.Error(), "faults[1] (restart-broker): starts before the restart of broker1 ends") {
		t.Fatalf("error %v, want the overlap named", err)
	}
}

// Both compose files publish each broker's /healthz port on the host's
// loopback, where waitHealthy asks it.
func TestComposeFilesPublishHealthz(t *testing.T) {
	for _, f := range []string{"eval.yml", ClusterComposeFile} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `ports: ["127.0.0.1::`+brokerHTTPPort+`"]`) || !strings.Contains(string(b), `DISTCHAT_HTTP: "0.0.0.0:`+brokerHTTPPort+`"`) {
			t.Errorf("%s does not publish the broker's HTTP port %s on 127.0.0.1", f, brokerHTTPPort)
		}
	}
}

// A restart's failover report holds its nodes to RestartTarget, not the
// kill's FailoverTarget, and names the fault.
func TestMeasureFailoverOfARestart(t *testing.T) {
	logs := t.TempDir()
	const restart = 10_000 // ms
	logLines(t, logs, "drill", map[string]any{"event": nodelog.EventFault, "fault": RestartBroker, "phase": nodelog.PhaseStart,
		"target": "broker1", "ts_ns": int64(restart) * 1e6})
	logLines(t, logs, "alice", recvAt(restart+100), map[string]any{"event": nodelog.EventConnectionLost, "ts_ns": int64(restart+150) * 1e6,
		"broker": "tcp://broker1:1883"}, map[string]any{"event": nodelog.EventReconnected, "ts_ns": int64(restart+400) * 1e6,
		"broker": "tcp://broker2:1883"}, recvAt(restart+1_300))
	reports, err := MeasureFailover("roll", logs)
	if err != nil {
		t.Fatal(err)
	}
	if len(reports) != 1 || len(reports[0].Nodes) != 1 {
		t.Fatalf("reports %+v, want one with alice", reports)
	}
	rep := reports[0]
	if rep.Fault != RestartBroker || rep.TargetMS != 1000 || rep.MaxMS != 1200 || rep.Met {
		t.Errorf("fault %s, target %.0f ms, max %.0f ms, met %t; want restart-broker, 1000, 1200, false", rep.Fault, rep.TargetMS, rep.MaxMS, rep.Met)
	}
}
