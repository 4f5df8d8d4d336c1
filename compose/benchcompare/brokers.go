package benchcompare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distchat/distchat/broker/netwait"
	"github.com/distchat/distchat/config"
)

// Broker names, in report order. Mosquitto is the reference every ratio
// divides by; mochi is bare Mochi (compose/cmd/baremochi); the rest are
// distchat broker variants (distchatVariants).
const (
	Mosquitto = "mosquitto"
	Mochi     = "mochi"
)

// AllBrokers is every broker bench-compare knows, in report order.
var AllBrokers = []string{Mosquitto, Mochi, "log-off", "process", "machine", Cluster}

// dataDirArg stands for the broker's fresh data directory in variant args.
const dataDirArg = "{data}"

// distchatVariants are each distchat broker variant's own arguments. A
// single broker gets one processor, as Mosquitto runs on one thread; a
// cluster's brokers keep Go's default for their embedded NATS servers.
var distchatVariants = map[string][]string{
	"log-off": {"-procs", "1", "-room-log=false"},
	"process": {"-procs", "1", "-data", dataDirArg, "-durability", "process"},
	"machine": {"-procs", "1", "-data", dataDirArg, "-durability", "machine"},
	Cluster:   {"-data", dataDirArg, "-durability", "process"},
}

// ParseBrokers checks a comma-separated broker list against AllBrokers and
// returns it in report order.
func ParseBrokers(list string) ([]string, error) {
	names := config.SplitList(list)
	if len(names) == 0 {
		return nil, errors.New("no brokers given")
	}
	return pick(AllBrokers, names, func(b string) string { return b }, "broker")
}

// pick keeps the elements of all named in names, in all's order; an
// unknown name is an error naming what the names are.
func pick[T any](all []T, names []string, name func(T) string, what string) ([]T, error) {
	for _, n := range names {
		if !slices.ContainsFunc(all, func(x T) bool { return name(x) == n }) {
			return nil, fmt.Errorf("unknown %s %q (one of %s)", what, n, joinEach(all, name))
		}
	}
	return slices.DeleteFunc(slices.Clone(all), func(x T) bool { return !slices.Contains(names, name(x)) }), nil
}

// ourArgs returns the distchat broker's command line for variant on addr
// with data directory dir, serving /stats on httpAddr ("": no HTTP).
func ourArgs(bin, variant, addr, httpAddr, dir string) ([]string, error) {
	args, ok := distchatVariants[variant]
	if !ok {
		return nil, fmt.Errorf("unknown distchat broker variant %q", variant)
	}
	argv := []string{bin, "-tcp", addr, "-http", httpAddr, "-log-level", "warn"}
	for _, a := range args {
		argv = append(argv, strings.ReplaceAll(a, dataDirArg, dir))
	}
	return argv, nil
}

// runningBroker is one broker on loopback: one child, or a cluster's three.
type runningBroker struct {
	Name  string
	URL   string // tcp://host:port, a cluster's comma-separated
	HTTP  string // a distchat broker's /stats listener (host:port), else ""
	procs []*Child
}

// brokerProc is one broker process to launch; its dir receives broker.log.
type brokerProc struct {
	name, dir, addr string
	argv            []string
}

// startBroker starts broker name in dir and waits until it listens.
func (e *Env) startBroker(ctx context.Context, name, dir string) (*runningBroker, error) {
	if name == Cluster {
		return e.startCluster(ctx, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("broker dir: %w", err)
	}
	ports, err := freePorts(2) // MQTT, and HTTP for a distchat broker
	if err != nil {
		return nil, err
	}
	addr := loopback(ports[0])
	b := &runningBroker{Name: name, URL: "tcp://" + addr}
	var argv []string
	switch name {
	case Mosquitto:
		conf := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(MosquittoConfig(ports[0])), 0o644); err != nil {
			return nil, fmt.Errorf("write mosquitto config: %w", err)
		}
		argv = []string{e.MosquittoBin, "-c", conf}
	case Mochi:
		argv = []string{e.Bins.BareMochi, "-tcp", addr}
	default:
		b.HTTP = loopback(ports[1])
		if argv, err = ourArgs(e.Bins.Broker, name, addr, b.HTTP, filepath.Join(dir, "data")); err != nil {
			return nil, err
		}
	}
	if b.procs, err = launch(ctx, []brokerProc{{name: name, dir: dir, addr: addr, argv: argv}}, brokerStartWait); err != nil {
		return nil, err
	}
	return b, nil
}

// How long a broker may take to listen: a cluster's brokers wait for
// Raft's first elections, 4–9 s each, more when votes split.
const (
	brokerStartWait  = 15 * time.Second
	clusterStartWait = time.Minute
)

// launch starts every process and waits until each listens; when one
// fails it stops those it started.
func launch(ctx context.Context, procs []brokerProc, wait time.Duration) ([]*Child, error) {
	var started []*Child
	fail := func(err error) ([]*Child, error) {
		_, serr := stopAll(started)
		return nil, errors.Join(err, serr)
	}
	for _, p := range procs {
		c, err := StartChild(ctx, p.name, p.argv, filepath.Join(p.dir, "broker.log"))
		if err != nil {
			return fail(err)
		}
		started = append(started, c)
	}
	for i, c := range started {
		if err := c.Listening(ctx, procs[i].addr, wait); err != nil {
			return fail(err)
		}
	}
	return started, nil
}

func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	for i := range ports {
		var err error
		if ports[i], err = netwait.FreePort(); err != nil {
			return nil, err
		}
	}
	return ports, nil
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// groupCommits reads a distchat broker's room log group commits from its
// /stats (zero for the other brokers).
func (b *runningBroker) groupCommits(ctx context.Context) (GroupCommits, error) {
	if b.HTTP == "" {
		return GroupCommits{}, nil
	}
	var st struct {
		RoomLog GroupCommits `json:"room_log"` // null or absent: zero
	}
	if err := fetchStats(ctx, b.HTTP, &st); err != nil {
		return GroupCommits{}, fmt.Errorf("%s /stats: %w", b.Name, err)
	}
	return st.RoomLog, nil
}

func fetchStats(ctx context.Context, addr string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stats", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
