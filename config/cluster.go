package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"time"
)

// Cluster makes the broker one node of a highly available chat service: it
// embeds a NATS server with JetStream, joins the other brokers over NATS
// routes, and keeps the room log in a stream replicated with Raft
// (docs/cluster.md). Cluster mode is on when Node is set; without it the
// broker is the single binary with its file room log and starts no NATS code.
type Cluster struct {
	// Node names this broker in the cluster (the NATS server name): unique,
	// stable across restarts, since JetStream's Raft groups know their
	// peers by it.
	Node string `yaml:"node"`
	// Listen is the NATS cluster (route) listener, host:port.
	Listen string `yaml:"listen"`
	// Routes are the other brokers' route URLs, nats://host:port. A list
	// may name this broker too (the same list on every machine).
	Routes []string `yaml:"routes"`
	// Replicas is how many brokers hold each record of the room log: an
	// append is acknowledged once a majority of them have it. 1, 3 or 5.
	Replicas int `yaml:"replicas"`
	// Partitions is how many streams the room log is spread over; each
	// has its own leader, which sequences the conversations hashed onto
	// it, and the leaders are spread over the brokers. 0 (the default)
	// means as many as Replicas: in the usual cluster of as many brokers
	// as replicas, one partition led by each. Fixed once the log exists:
	// a broker started with another number refuses to start.
	Partitions int `yaml:"partitions"`
	// BatchInterval is the least time between two writes of one
	// conversation from one broker (a batch to the stream, or a forward
	// to the sequencer): what arrives meanwhile goes in the next write. A
	// quiet conversation's message goes at once; a busy one's wait at most
	// this long, and each write then carries several records, which is
	// what the cluster's CPU per message depends on (every write is a
	// round of agreement and messages between the brokers). 0 writes
	// whenever the previous write is done.
	BatchInterval time.Duration `yaml:"batch_interval"`
	// Name is the NATS cluster name; every broker of one service uses the same.
	Name string `yaml:"name"`
}

// DefaultCluster is the cluster section a broker starts with: off (no
// node), three replicas, cluster name distchat. Its batch interval of a few
// milliseconds on a chat's latency buys several records per write under
// load (docs/cluster.md, "Batches").
func DefaultCluster() Cluster {
	return Cluster{Listen: "0.0.0.0:6222", Routes: []string{}, Replicas: 3, Name: "distchat", BatchInterval: 2 * time.Millisecond}
}

// Enabled reports whether the broker runs as a cluster node.
func (c Cluster) Enabled() bool { return c.Node != "" }

// validate checks the cluster section against the rest of the broker's
// configuration: one line per problem.
func (c Cluster) validate(dataDir string, roomLog bool) []error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if !clusterName.MatchString(c.Node) {
		add("cluster.node: %q must be 1 to 64 letters, digits, '-' or '_' (it names the NATS server)", c.Node)
	}
	if !clusterName.MatchString(c.Name) {
		add("cluster.name: %q must be 1 to 64 letters, digits, '-' or '_', the same on every broker", c.Name)
	}
	if err := ValidateAddr(c.Listen, false); err != nil {
		add("cluster.listen: %w", err)
	}
	for _, r := range c.Routes {
		if err := validateRoute(r); err != nil {
			add("cluster.routes: %w", err)
		}
	}
	if c.BatchInterval < 0 || c.BatchInterval > time.Second {
		add("cluster.batch_interval: %s must be 0 to 1s", c.BatchInterval)
	}
	if c.Partitions < 0 || c.Partitions > 64 {
		add("cluster.partitions: %d must be 0 (as many as replicas) to 64", c.Partitions)
	}
	switch c.Replicas {
	case 1, 3, 5:
	default:
		add("cluster.replicas: %d must be 1, 3 or 5 (a majority of them acknowledges each append)", c.Replicas)
	}
	if c.Replicas > 1 && len(c.Routes) == 0 {
		add("cluster.routes: empty with %d replicas; give the other brokers' nats://host:port", c.Replicas)
	}
	if dataDir == "" {
		add("cluster: needs -data DIR (JetStream keeps the replicated room log in DIR/jetstream)")
	}
	if !roomLog {
		add("cluster: needs the room log on (room_log.enabled); the replicated log is what the cluster shares")
	}
	return errs
}

// clusterName is what NATS accepts as a server or cluster name, kept to
// characters that need no quoting in a URL, a subject or a shell.
var clusterName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// validateRoute checks one nats://host:port route URL.
func validateRoute(r string) error {
	u, err := url.Parse(r)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", r, err)
	}
	if u.Scheme != "nats" {
		return fmt.Errorf("%q needs the scheme nats://, as in nats://broker2:6222", r)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return fmt.Errorf("%q has no host:port", r)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("%q has an invalid port %q", r, port)
	}
	if u.Path != "" && u.Path != "/" {
		return errors.New(r + " has a path; a route is nats://host:port")
	}
	return nil
}
