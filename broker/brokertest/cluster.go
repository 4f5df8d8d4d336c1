package brokertest

import (
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/distchat/distchat/config"
)

// ClusterConfigs returns n broker configurations that form one cluster
// (docs/cluster.md): nodes b1..bn, each with its own temporary data
// directory, MQTT and HTTP on port 0, and a NATS route listener on a free
// loopback port that every node's routes name. Replicas is min(n, 3).
func ClusterConfigs(t testing.TB, n int) []config.Broker {
	t.Helper()
	ports := freePorts(t, n)
	routes := make([]string, n)
	for i, p := range ports {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", p)
	}
	cfgs := make([]config.Broker, n)
	for i := range cfgs {
		c := Config(t)
		c.Cluster.Node = fmt.Sprintf("b%d", i+1)
		c.Cluster.Listen = fmt.Sprintf("127.0.0.1:%d", ports[i])
		c.Cluster.Routes = append([]string(nil), routes...)
		c.Cluster.Replicas = min(n, 3)
		cfgs[i] = c
	}
	return cfgs
}

// StartCluster starts n brokers of one cluster and closes them when the
// test ends. They start together: each waits for a majority of the others
// before JetStream answers.
func StartCluster(t testing.TB, n int) []*Broker {
	t.Helper()
	return StartAll(t, ClusterConfigs(t, n))
}

// StartAll starts a broker for each configuration, concurrently, and closes
// them when the test ends.
func StartAll(t testing.TB, cfgs []config.Broker) []*Broker {
	t.Helper()
	out := make([]*Broker, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i, c := range cfgs {
		wg.Go(func() { out[i], errs[i] = start(t, c, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("brokertest: broker %d of %d: %v", i+1, len(cfgs), err)
		}
	}
	return out
}

// Kill stops the broker as a crash would, as far as clients and the other
// brokers of a cluster can tell (broker.Server.Kill). Start(t, b.Config)
// brings it back on the same ports and data directory.
func (b *Broker) Kill() {
	b.closeOnce.Do(func() {
		if err := b.Server.Kill(); err != nil {
			b.t.Errorf("brokertest: kill broker: %v", err)
		}
	})
}

// freePorts returns n loopback TCP ports free at the time of the call
// (the NATS routes must be known before any broker starts).
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	lns := make([]net.Listener, n)
	ports := make([]int, n)
	for i := range lns {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("brokertest: free port: %v", err)
		}
		lns[i], ports[i] = ln, ln.Addr().(*net.TCPAddr).Port
	}
	for _, ln := range lns {
		if err := ln.Close(); err != nil {
			t.Fatalf("brokertest: free port: %v", err)
		}
	}
	return ports
}
