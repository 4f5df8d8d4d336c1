package brokertest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/distchat/distchat/config"
)

// ClusterConfigs returns n broker configurations that form one cluster
// (docs/cluster.md): nodes b1..bn, each with its own temporary data
// directory, MQTT and HTTP on port 0, and a NATS route listener on a free
// loopback port that every node's routes name. Replicas is min(n, 3). The
// cluster has a name of its own, so that the routes of another test's
// cluster (in another package's test process) are refused if they ever
// reach one of its ports.
func ClusterConfigs(t testing.TB, n int) []config.Broker {
	t.Helper()
	ports := freePorts(t, n)
	name := fmt.Sprintf("test-%d-%d", os.Getpid(), rand.Uint32())
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
		c.Cluster.Name = name
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
// (the NATS routes must be known before any broker starts). They are
// drawn at random below the kernel's ephemeral range, from which port 0
// listeners and outgoing connections of every other process take theirs:
// a port handed out there and closed again can be taken by another test
// process before its broker binds it.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for attempt := 0; len(ports) < n; attempt++ {
		if attempt == 1000 {
			t.Fatalf("brokertest: no free port in %d-%d after %d tries", routePortMin, routePortMax, attempt)
		}
		p := routePortMin + rand.IntN(routePortMax-routePortMin)
		if slices.Contains(ports, p) {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue // in use: draw again
		}
		if err := ln.Close(); err != nil {
			t.Fatalf("brokertest: free port: %v", err)
		}
		ports = append(ports, p)
	}
	return ports
}

// The range freePorts draws from: below Linux's default ephemeral range
// (32768-60999) and above the ports services usually have.
const (
	routePortMin = 20000
	routePortMax = 32000
)
