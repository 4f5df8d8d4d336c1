package benchcompare

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distchat/distchat/broker/netwait"
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

// distchatVariants is the one table of distchat broker variants → their
// own arguments ({data} is a fresh data directory). Every variant also gets
// -tcp, -http "" and -log-level warn (ourArgs) and runs in open mode (no
// users file). A single broker is pinned to one processor (-procs 1), as
// Mosquitto runs on one thread and as suits a broker sharing a small
// machine with its load; a cluster's brokers keep Go's default, because
// the NATS server each embeds replicates in goroutines of its own.
var distchatVariants = map[string][]string{
	"log-off": {"-procs", "1", "-room-log=false"},
	"process": {"-procs", "1", "-data", dataDirArg, "-durability", "process"},
	"machine": {"-procs", "1", "-data", dataDirArg, "-durability", "machine"},
	// Cluster: each of its brokers, with the cluster flags (clusterArgs).
	Cluster: {"-data", dataDirArg, "-durability", "process"},
}

// ParseBrokers checks a comma-separated broker list against AllBrokers and
// returns it in report order.
func ParseBrokers(list string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if !slices.Contains(AllBrokers, name) {
			return nil, fmt.Errorf("unknown broker %q (one of %s)", name, strings.Join(AllBrokers, ", "))
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no brokers given")
	}
	slices.SortFunc(out, func(a, b string) int { return slices.Index(AllBrokers, a) - slices.Index(AllBrokers, b) })
	return out, nil
}

// MosquittoConfig is the configuration file of a benchmark Mosquitto on
// 127.0.0.1:port: anonymous, in memory, with a queue deep enough that a
// slow subscriber is not the reason for loss, and Nagle off as Go's net
// package has it for the other brokers.
func MosquittoConfig(port int) string {
	return fmt.Sprintf(`listener %d 127.0.0.1
allow_anonymous true
max_queued_messages 100000
persistence false
set_tcp_nodelay true
log_dest stderr
log_type error
log_type warning
`, port)
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

// runningBroker is one broker child on a loopback port.
type runningBroker struct {
	Name string
	Addr string // host:port
	URL  string // tcp://host:port
	// HTTP is a distchat broker's HTTP listener (host:port), for /stats;
	// "" for the others.
	HTTP string
	proc *child
	// peers are the cluster variant's other brokers (cluster.go).
	peers []*child
}

// startBroker starts broker name in a fresh directory under dir and waits
// until it accepts connections.
func (e *Env) startBroker(ctx context.Context, name, dir string) (*runningBroker, error) {
	if name == Cluster {
		return e.startCluster(ctx, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("broker dir: %w", err)
	}
	port, err := netwait.FreePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var argv []string
	httpAddr := ""
	switch name {
	case Mosquitto:
		conf := filepath.Join(dir, "mosquitto.conf")
		if err := os.WriteFile(conf, []byte(MosquittoConfig(port)), 0o644); err != nil {
			return nil, fmt.Errorf("write mosquitto config: %w", err)
		}
		argv = []string{e.MosquittoBin, "-c", conf}
	case Mochi:
		argv = []string{e.Bins.BareMochi, "-tcp", addr}
	default:
		httpPort, err := netwait.FreePort()
		if err != nil {
			return nil, err
		}
		httpAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort))
		if argv, err = ourArgs(e.Bins.Broker, name, addr, httpAddr, filepath.Join(dir, "data")); err != nil {
			return nil, err
		}
	}
	c, err := startChild(ctx, name, argv, nil, filepath.Join(dir, "broker.log"))
	if err != nil {
		return nil, err
	}
	b := &runningBroker{Name: name, Addr: addr, URL: "tcp://" + addr, HTTP: httpAddr, proc: c}
	if err := c.listening(ctx, addr); err != nil {
		_, serr := c.stop()
		return nil, errors.Join(err, serr)
	}
	return b, nil
}

// groupCommits reads a distchat broker's room log group commits from its
// /stats (zero with durability process, and for the other brokers).
func (b *runningBroker) groupCommits(ctx context.Context) (GroupCommits, error) {
	if b.HTTP == "" {
		return GroupCommits{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.HTTP+"/stats", nil)
	if err != nil {
		return GroupCommits{}, fmt.Errorf("%s /stats: %w", b.Name, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return GroupCommits{}, fmt.Errorf("%s /stats: %w", b.Name, err)
	}
	defer resp.Body.Close()
	var st struct {
		RoomLog *GroupCommits `json:"room_log"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return GroupCommits{}, fmt.Errorf("%s /stats: %w", b.Name, err)
	}
	if st.RoomLog == nil {
		return GroupCommits{}, nil
	}
	return *st.RoomLog, nil
}

// stop ends the broker (every process of a cluster) and returns what it
// used: CPU and peak RSS summed over its processes.
func (b *runningBroker) stop() (Usage, error) {
	u, err := b.proc.stop()
	for _, p := range b.peers {
		pu, perr := p.stop()
		u.CPU += pu.CPU
		u.MaxRSSKB += pu.MaxRSSKB
		err = errors.Join(err, perr)
	}
	return u, err
}

// findMosquitto returns the mosquitto binary and its version. When it is
// missing and this process runs as root it installs the Debian package.
func findMosquitto(ctx context.Context, progress func(string, ...any)) (string, string, error) {
	path, err := lookMosquitto()
	if err != nil && os.Geteuid() == 0 {
		progress("mosquitto not found: apt-get install -y mosquitto")
		for _, argv := range [][]string{{"apt-get", "update"}, {"apt-get", "install", "-y", "mosquitto"}} {
			out, aerr := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
			if aerr != nil {
				return "", "", fmt.Errorf("%s: %w (%s)", strings.Join(argv, " "), aerr, lastOf(string(out)))
			}
		}
		path, err = lookMosquitto()
	}
	if err != nil {
		return "", "", errors.New("mosquitto not found on PATH: install it (apt-get install mosquitto) or leave it out with -brokers")
	}
	// mosquitto -h prints "mosquitto version X.Y.Z" first and exits 3.
	out, herr := exec.CommandContext(ctx, path, "-h").CombinedOutput()
	version := MosquittoVersion(string(out))
	if version == "" {
		return "", "", fmt.Errorf("%s -h: no version in its output (%v)", path, herr)
	}
	return path, version, nil
}

// lookMosquitto finds mosquitto on PATH or in /usr/sbin (not on a normal
// user's PATH on Debian).
func lookMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	return exec.LookPath("/usr/sbin/mosquitto")
}

// MosquittoVersion extracts the version from mosquitto -h output.
func MosquittoVersion(help string) string {
	for _, line := range strings.Split(help, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "mosquitto version "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func lastOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
