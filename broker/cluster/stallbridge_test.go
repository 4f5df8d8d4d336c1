package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/config"
)

// TestStallBridgeFeedsTheView: with its consumer stopped, as when the
// broker holding it dies, a broker's view still takes the records other
// brokers append, and its own appends (which wait for the view) complete.
func TestStallBridgeFeedsTheView(t *testing.T) {
	stores := startLogs(t, 3)
	a, b := stores[0], stores[1]
	pa, pb := labPartition(a), labPartition(b)
	appendText(t, a, "first")
	if err := b.waitApplied(pb, a.appliedOf(pa)); err != nil {
		t.Fatalf("b's view before the stall: %v", err)
	}
	if !stopWithin(10*time.Second, pb.run.cc.Stop) {
		t.Fatal("b's consumer did not stop")
	}
	b.bridgeStall(pb)
	appendText(t, a, "second")
	if err := b.waitApplied(pb, a.appliedOf(pa)); err != nil {
		t.Fatalf("b's view with its consumer stopped: %v", err)
	}
	// A stopped consumer may still hand over a record that was on its way
	// (here "second"): the bridge then ends, as when a consumer delivers
	// again. A consumer that is really gone misses its heartbeats once more
	// and its error handler starts the bridge again; this one has no
	// handler left, so the test does what it would (a no-op while the
	// bridge runs).
	b.bridgeStall(pb)
	appendText(t, b, "third") // waits for b's view to hold it
	recs, err := b.Read("lab", 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		var e struct{ ID string }
		if err := json.Unmarshal(r.Data, &e); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%s", r.Seq, e.ID))
	}
	if want := "[1:first 2:second 3:third]"; fmt.Sprint(got) != want {
		t.Fatalf("b's view holds %v, want %s", got, want)
	}
}

// labPartition is the partition of conversation "lab" in s.
func labPartition(s *LogStore) *partition { return s.parts[partitionOf("lab", len(s.parts))] }

// appliedOf is the stream sequence s's view has reached in p.
func (s *LogStore) appliedOf(p *partition) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.applied
}

// appendText appends text to lab on s.
func appendText(t *testing.T, s *LogStore, text string) {
	t.Helper()
	data := fmt.Appendf(nil, `{"id":%q,"from":"t"}`, text) // an id: a publish asked again is stored once
	if _, err := s.Append("lab", time.Now().UnixNano(), func(uint64) ([]byte, error) { return data, nil }); err != nil {
		t.Fatalf("append %q: %v", text, err)
	}
}

// loopbackAddrs returns n loopback addresses whose ports were free a
// moment ago, for route listeners.
func loopbackAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return addrs
}

// startLogs starts n cluster nodes on loopback, each with its room log
// store, and closes them when the test ends.
func startLogs(t testing.TB, n int) []*LogStore {
	t.Helper()
	listens := loopbackAddrs(t, n)
	routes := make([]string, n)
	for i, l := range listens {
		routes[i] = "nats://" + l
	}
	name := fmt.Sprintf("test-%d-%d", os.Getpid(), time.Now().UnixNano()) // refuses another test cluster's routes
	stores := make([]*LogStore, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			log := logrus.New()
			log.SetLevel(logrus.ErrorLevel)
			log.SetOutput(testLog{t})
			entry := log.WithField("node", i)
			dir := t.TempDir()
			c := config.Cluster{Node: fmt.Sprintf("b%d", i+1), Listen: listens[i], Routes: routes, Replicas: n, Name: name}
			node, err := Start(context.Background(), c, dir, 1<<20, entry)
			if err != nil {
				errs[i] = err
				return
			}
			t.Cleanup(func() {
				if err := node.Close(); err != nil {
					t.Errorf("close node %d: %v", i+1, err)
				}
			})
			stores[i], errs[i] = OpenLog(context.Background(), node, dir, LogOptions{Replicas: n}, entry)
			if errs[i] == nil {
				t.Cleanup(func() {
					if err := stores[i].Close(); err != nil {
						t.Errorf("close log %d: %v", i+1, err)
					}
				})
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	return stores
}

// testLog writes log lines to the test's log, shown when it fails.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
