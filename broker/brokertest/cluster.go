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

// ClusterConfigs returns n broker configurations forming one cluster
// (docs/cluster.md): nodes b1..bn as Config makes them, with NATS routes on
// free loopback ports, min(n, 3) replicas, and a cluster name of its own, so
// another test process's cluster is refused if its routes reach a port here.
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

// StartCluster starts n brokers of one cluster, together (JetStream waits
// for a majority), and closes them when the test ends.
func StartCluster(t testing.TB, n int) []*Broker {
	t.Helper()
	return StartAll(t, ClusterConfigs(t, n))
}

// StartAll starts a broker per configuration, concurrently, closed at the test's end.
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

// Kill stops the broker as a crash would to clients and other brokers
// (broker.Server.Kill); Start(t, b.Config) brings it back.
func (b *Broker) Kill() {
	b.closeOnce.Do(func() {
		if err := b.Server.Kill(); err != nil {
			b.t.Errorf("brokertest: kill broker: %v", err)
		}
	})
}

// freePorts returns n loopback TCP ports free now (routes are known before any
// broker starts), below the ephemeral range: a port 0 listener's port, closed
// again, can go to another process before the broker binds it.
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

// freePorts draws from below Linux's ephemeral range (32768-60999), above services'.
const (
	routePortMin = 20000
	routePortMax = 32000
)
