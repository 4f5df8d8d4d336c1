package benchcompare

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSpreadURL(t *testing.T) {
	three := "tcp://a:1,tcp://b:1,tcp://c:1"
	for _, tt := range []struct {
		list string
		i    int
		want string
	}{
		{"tcp://a:1", 0, "tcp://a:1"},
		{"tcp://a:1", 5, "tcp://a:1"},
		{three, 0, three},
		{three, 1, "tcp://b:1,tcp://c:1,tcp://a:1"},
		{three, 2, "tcp://c:1,tcp://a:1,tcp://b:1"},
		{three, 3, three},
	} {
		if got := spreadURL(tt.list, tt.i); got != tt.want {
			t.Errorf("spreadURL(%q, %d) = %q, want %q", tt.list, tt.i, got, tt.want)
		}
	}
	if got := firstURL(three); got != "tcp://a:1" {
		t.Errorf("firstURL = %q", got)
	}
	if got := firstURL("tcp://a:1"); got != "tcp://a:1" {
		t.Errorf("firstURL of one = %q", got)
	}
}

// With a broker list a chat node does not wait for its peers and expects
// all their messages; with one broker its command line stays as it is.
func TestSpreadArgs(t *testing.T) {
	cfg := ChatConfig{Nodes: 3, Rate: 100, Duration: 10 * time.Second, Size: 256, Linger: 3 * time.Second}
	one := cfg.nodeArgs("cn", "tcp://a:1", "n0", "n0.log", "l")
	if got := spreadArgs(one, cfg, "tcp://a:1"); strings.Join(got, " ") != strings.Join(one, " ") {
		t.Errorf("one broker: %q", got)
	}
	got := strings.Join(spreadArgs(cfg.nodeArgs("cn", "tcp://a:1,tcp://b:1", "n0", "n0.log", "l"), cfg, "tcp://a:1,tcp://b:1"), " ")
	if !strings.Contains(got, "-peers 1 ") || !strings.HasSuffix(got, "-expect 3000") {
		t.Errorf("broker list: %q", got)
	}
	// 333 msg/s for 10 s: a node sends at 0, 3.003 ms, … 9,999.99 ms, 3,331 in all.
	odd := ChatConfig{Nodes: 3, Rate: 333, Duration: 10 * time.Second}
	if got := strings.Join(spreadArgs(odd.nodeArgs("cn", "tcp://a:1,tcp://b:1", "n0", "n0.log", "l"), odd, "tcp://a:1,tcp://b:1"), " "); !strings.HasSuffix(got, "-expect 9993") {
		t.Errorf("333 msg/s: %q", got)
	}
}

// The cluster variant's brokers run the process variant's settings plus
// the cluster flags, every one with the same routes.
func TestClusterArgs(t *testing.T) {
	routes := []string{"nats://127.0.0.1:7001", "nats://127.0.0.1:7002", "nats://127.0.0.1:7003"}
	argv, err := clusterArgs("broker", 1, "127.0.0.1:1884", "127.0.0.1:8082", "127.0.0.1:7002", routes, "/d/2")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(argv, " ")
	want := "broker -tcp 127.0.0.1:1884 -http 127.0.0.1:8082 -log-level warn -data /d/2 -durability process -cluster-node bench2 " +
		"-cluster-listen 127.0.0.1:7002 -cluster-routes nats://127.0.0.1:7001,nats://127.0.0.1:7002,nats://127.0.0.1:7003 -cluster-replicas 3"
	if got != want {
		t.Errorf("args\n%s\nwant\n%s", got, want)
	}
	if b, err := ParseBrokers("cluster,process"); err != nil || strings.Join(b, ",") != "process,cluster" {
		t.Errorf("ParseBrokers: %v, %v", b, err)
	}
}

// settle waits for every broker to lead one partition, and gives up after
// its wait when one leads none or two.
func TestSettleWaitsForSpreadLeaders(t *testing.T) {
	tests := []struct {
		name    string
		leading []string // each broker's /stats cluster.leading, as JSON
		want    bool
	}{
		{"spread", []string{`["ROOMLOG-0"]`, `["ROOMLOG-1"]`, `["ROOMLOG-2"]`}, true},
		{"one leads two", []string{`["ROOMLOG-0","ROOMLOG-1"]`, `[]`, `["ROOMLOG-2"]`}, false},
		{"no cluster section", []string{`null`, `null`, `null`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var https []string
			for _, led := range tt.leading {
				srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path != "/stats" {
						http.NotFound(w, r)
						return
					}
					fmt.Fprintf(w, `{"cluster":{"leading":%s}}`, led)
				}))
				t.Cleanup(srv.Close)
				https = append(https, strings.TrimPrefix(srv.URL, "http://"))
			}
			if got := settle(context.Background(), https, 300*time.Millisecond); got != tt.want {
				t.Errorf("settle = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestStartClusterTriesAgainWhenABrokerExits: a cluster whose broker exits
// while starting (its port taken meanwhile) is started again on other
// ports, up to clusterStartTries times, and then the error names the
// broker and its last log line.
func TestStartClusterTriesAgainWhenABrokerExits(t *testing.T) {
	dir := t.TempDir()
	broker := filepath.Join(dir, "broker")
	if err := os.WriteFile(broker, []byte("#!/bin/sh\necho 'listen: address already in use'\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var again int
	progress := func(format string, args ...any) {
		if line := fmt.Sprintf(format, args...); strings.Contains(line, "starting it again") {
			again++
		}
	}
	env := &Env{Bins: Bins{Broker: broker}, Tmp: dir, Progress: progress}
	_, err := env.startCluster(context.Background(), filepath.Join(dir, "cluster"))
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("startCluster: %v, want the exited broker's last line", err)
	}
	if again != clusterStartTries-1 {
		t.Fatalf("started again %d times, want %d", again, clusterStartTries-1)
	}
}
