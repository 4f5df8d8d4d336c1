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

// Cluster makes the broker, when Node is set, one node of a highly available
// service: an embedded NATS JetStream routes to the other brokers and keeps
// the room log in a Raft-replicated stream (docs/cluster.md); else no NATS code runs.
type Cluster struct {
	Node     string   `yaml:"node"`     // names this broker to NATS: unique and stable, as Raft peers know it by it
	Listen   string   `yaml:"listen"`   // the NATS cluster (route) listener, host:port
	Routes   []string `yaml:"routes"`   // the other brokers' nats://host:port (this one's may be listed too)
	Replicas int      `yaml:"replicas"` // 1, 3 or 5 hold each record; a majority acknowledges an append
	// Partitions is how many streams the room log is spread over, each led
	// by a broker sequencing its conversations; 0: as many as Replicas. Fixed
	// once the log exists: a broker given another number refuses to start.
	Partitions int `yaml:"partitions"`
	// BatchInterval is the least time between a broker's writes of one
	// conversation: a busy one's messages wait up to this long and go several
	// a write (a round of agreement), which the cluster's CPU per message
	// depends on. 0 writes whenever the previous write is done.
	BatchInterval time.Duration `yaml:"batch_interval"`
	Name          string        `yaml:"name"` // the NATS cluster name, the same on every broker of one service
}

// DefaultCluster is the cluster section a broker starts with: off (no
// node), three replicas; a batch interval of milliseconds buys several
// records a write under load (docs/cluster.md, "Batches").
func DefaultCluster() Cluster {
	return Cluster{Listen: "0.0.0.0:6222", Routes: []string{}, Replicas: 3, Name: "distchat", BatchInterval: 2 * time.Millisecond}
}

// Enabled reports whether the broker runs as a cluster node.
func (c Cluster) Enabled() bool { return c.Node != "" }

// validate checks the cluster section against the rest, one line a problem.
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

// clusterName is a NATS name needing no quotes in a URL, a subject or a shell.
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
