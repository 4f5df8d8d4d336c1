package benchcompare

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Cluster is the distchat broker in cluster mode: three brokers joined over
// NATS routes, the room log replicated three times. Chat nodes spread over
// the brokers as a deployment spreads its users; the pair loads use the first.
const Cluster = "cluster"

const clusterSize = 3

// clusterArgs is broker i's command line: its variant's plus the cluster flags.
func clusterArgs(bin string, i int, addr, httpAddr, route string, routes []string, dir string) ([]string, error) {
	argv, err := ourArgs(bin, Cluster, addr, httpAddr, dir)
	if err != nil {
		return nil, err
	}
	return append(argv, "-cluster-node", "bench"+strconv.Itoa(i+1), "-cluster-listen", route,
		"-cluster-routes", strings.Join(routes, ","), "-cluster-replicas", strconv.Itoa(clusterSize)), nil
}

// startCluster starts the three brokers under dir (startClusterOnce), on
// fresh ports again when one of them exits while starting: a port found
// free can be taken, before its broker binds it, by the random port of
// another broker's embedded NATS client listener.
func (e *Env) startCluster(ctx context.Context, dir string) (*runningBroker, error) {
	for try, tryDir := 1, dir; ; try++ {
		b, err := e.startClusterOnce(ctx, tryDir)
		if err == nil || try == clusterStartTries || ctx.Err() != nil {
			return b, err
		}
		e.Progress("cluster: %v; starting it again on other ports", err)
		tryDir = filepath.Join(dir, "retry"+strconv.Itoa(try))
	}
}

// clusterStartTries bounds startCluster's attempts.
const clusterStartTries = 3

// startClusterOnce starts the three brokers under dir and waits until each
// listens and the partitions' leaderships have spread (settle); it fails
// when a broker exits meanwhile.
func (e *Env) startClusterOnce(ctx context.Context, dir string) (*runningBroker, error) {
	ports, err := freePorts(3 * clusterSize) // MQTT, route and HTTP, broker by broker
	if err != nil {
		return nil, err
	}
	routes := make([]string, clusterSize)
	for i := range routes {
		routes[i] = "nats://" + loopback(ports[3*i+1])
	}
	procs, urls, https := make([]brokerProc, clusterSize), make([]string, clusterSize), make([]string, clusterSize)
	for i := range procs {
		p := brokerProc{name: fmt.Sprintf("%s broker%d", Cluster, i+1), dir: filepath.Join(dir, "broker"+strconv.Itoa(i+1)), addr: loopback(ports[3*i])}
		if err := os.MkdirAll(p.dir, 0o755); err != nil {
			return nil, fmt.Errorf("broker dir: %w", err)
		}
		https[i] = loopback(ports[3*i+2])
		if p.argv, err = clusterArgs(e.Bins.Broker, i, p.addr, https[i], loopback(ports[3*i+1]), routes, filepath.Join(p.dir, "data")); err != nil {
			return nil, err
		}
		procs[i], urls[i] = p, "tcp://"+p.addr
	}
	b := &runningBroker{Name: Cluster, URL: strings.Join(urls, ",")}
	if b.procs, err = launch(ctx, procs, clusterStartWait); err != nil {
		return nil, err
	}
	if !settle(ctx, https, leaderSettleWait) {
		if i := slices.IndexFunc(b.procs, (*Child).exited); i >= 0 {
			_, err := stopAll(b.procs)
			return nil, errors.Join(fmt.Errorf("%s exited while the cluster started (%s)", b.procs[i].name, lastLine(b.procs[i].logPath)), err)
		}
		e.Progress("cluster: the partitions' leaderships did not spread within %s; measuring anyway", leaderSettleWait)
	}
	return b, nil
}

// leaderSettleWait bounds settle: a home broker asks for its partition
// every five seconds at most.
const leaderSettleWait = 30 * time.Second

// settle reports whether, within wait, every broker at the HTTP addresses
// comes to lead one partition: a fresh cluster moves its leaderships for
// seconds, each move pausing appends, and a load meanwhile would measure
// the start rather than the cluster.
func settle(ctx context.Context, https []string, wait time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for !spread(ctx, https) {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// spread reports whether every broker's /stats names one partition led.
func spread(ctx context.Context, https []string) bool {
	for _, addr := range https {
		var st struct {
			Cluster struct {
				Leading []string `json:"leading"`
			} `json:"cluster"`
		}
		if fetchStats(ctx, addr, &st) != nil || len(st.Cluster.Leading) != 1 {
			return false
		}
	}
	return true
}

// spreadURL is the broker list node i uses: the comma-separated list
// rotated to start at broker i mod its length. One URL stays as it is.
func spreadURL(list string, i int) string {
	urls := strings.Split(list, ",")
	k := i % len(urls)
	return strings.Join(append(urls[k:], urls[:k]...), ",")
}

// spreadArgs adapts a chat node's command line to a broker list: the
// nodes start together, so each waits for no peers (-peers 1) and expects
// every node's messages (-expect).
func spreadArgs(argv []string, cfg ChatConfig, url string) []string {
	if !strings.Contains(url, ",") {
		return argv
	}
	out := slices.Clone(argv)
	if i := slices.Index(out, "-peers"); i >= 0 && i+1 < len(out) {
		out[i+1] = "1"
	}
	return append(out, "-expect", strconv.Itoa(cfg.Nodes*cfg.perNode()))
}

// perNode is how many messages one node of the load sends: one every
// 1/rate within the duration, counted as chatnode bench counts them (its
// first at 0, so 333 msg/s for 10 s is 3,331).
func (c ChatConfig) perNode() int {
	if c.Rate <= 0 || c.Duration <= 0 {
		return 0
	}
	interval := time.Duration(float64(time.Second) / c.Rate)
	return int((c.Duration + interval - 1) / interval)
}

func firstURL(list string) string {
	first, _, _ := strings.Cut(list, ",")
	return first
}
