// Package eval runs distchat's evaluation scenarios: it starts the compose
// evaluation deployment (compose/eval.yml) with a scenario's load settings,
// breaks it on schedule with the scenario's faults (docker kill, docker
// stop, docker network disconnect), records each fault window in a drill log that the
// analysis tool shades in its plots, and collects the nodes' logs.
package eval

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// NodeServices are the chat-node services of compose/eval.yml, in the order
// a scenario starts them: a scenario with `nodes: n` runs the first n.
var NodeServices = []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}

// DefaultNodes is how many nodes a scenario runs by default.
const DefaultNodes = 3

// BrokerService is the broker's service name in compose/eval.yml.
const BrokerService = "broker"

// Fault kinds.
const (
	KillBroker = "kill-broker" // SIGKILL to the broker, started again after For
	// RestartBroker stops the broker gracefully (docker stop), starts it
	// after For and ends once its /healthz answers OK. A cluster's restarts
	// must not overlap: one after another they are a rolling restart.
	RestartBroker = "restart-broker"
	Partition     = "partition" // node Target off the network for For
	// KillNode sends SIGKILL to node Target and starts its container again
	// after For, to resume from the state its container kept.
	KillNode = "kill-node"
)

// Scenario is one evaluation run, read from a YAML file in compose/scenarios.
// Every node runs `chatnode bench` with the same load settings.
type Scenario struct {
	// Name is the run label in every log line: the analysis' scenario name.
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Rooms       []string          `yaml:"rooms"`      // every node joins and publishes to them (default lobby)
	Rate        int               `yaml:"rate"`       // messages per second per node (default 100)
	Duration    time.Duration     `yaml:"duration"`   // of the sending phase (default 20s)
	Size        int               `yaml:"size"`       // the envelope padded to it (default 256; below ~190 B, unpadded)
	Linger      time.Duration     `yaml:"linger"`     // receiving after sending all (default 20s)
	RoomLog     *bool             `yaml:"room_log"`   // the broker's room log, on by default
	Durability  config.Durability `yaml:"durability"` // process (default) or machine
	Nodes       int               `yaml:"nodes"`      // the first ones of NodeServices (default 3)
	// Groups name the comparisons the scenario takes part in (payload,
	// scale-rate, ...): the analysis draws a comparison plot per group.
	Groups     []string `yaml:"groups"`
	Deployment string   `yaml:"deployment"` // DeploySingle (default) or DeployCluster
	Faults     []Fault  `yaml:"faults"`
}

// Fault is one planned failure: at At after the nodes start, for For.
type Fault struct {
	At     time.Duration `yaml:"at"`
	Kind   string        `yaml:"kind"`
	Target string        `yaml:"target"`
	For    time.Duration `yaml:"for"`
}

// LoadScenario reads and validates a scenario file, filling defaults.
func LoadScenario(path string) (Scenario, error) {
	var s Scenario
	if err := config.ReadYAML(path, &s); err != nil {
		return Scenario{}, fmt.Errorf("scenario: %w", err)
	}
	s.Name = cmp.Or(s.Name, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
	s.defaults()
	if err := s.Validate(); err != nil {
		return Scenario{}, fmt.Errorf("scenario %s: %w", path, err)
	}
	return s, nil
}

func (s *Scenario) defaults() {
	if len(s.Rooms) == 0 {
		s.Rooms = []string{"lobby"}
	}
	s.Rate = cmp.Or(s.Rate, 100)
	s.Duration = cmp.Or(s.Duration, 20*time.Second)
	s.Size = cmp.Or(s.Size, 256)
	s.Linger = cmp.Or(s.Linger, 20*time.Second)
	if s.RoomLog == nil {
		s.RoomLog = new(true)
	}
	s.Durability = cmp.Or(s.Durability, config.DurabilityProcess)
	s.Nodes = cmp.Or(s.Nodes, DefaultNodes)
	s.Deployment = cmp.Or(s.Deployment, DeploySingle)
	slices.SortStableFunc(s.Faults, func(a, b Fault) int { return cmp.Compare(a.At, b.At) })
}

// Validate reports every problem in s.
func (s *Scenario) Validate() error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if err := wire.ValidateName("run", s.Name); err != nil {
		add("name: %w", err)
	}
	for _, r := range s.Rooms {
		if err := wire.ValidateName("room", r); err != nil {
			add("rooms: %w", err)
		}
	}
	if s.Rate < 1 || s.Rate > 20000 {
		add("rate: %d must be between 1 and 20000 messages per second per node", s.Rate)
	}
	if s.Duration < time.Second || s.Linger < 0 {
		add("duration must be at least 1s and linger not negative")
	}
	if s.Size < 64 || s.Size > wire.MaxPayloadBytes {
		add("size: %d must be between 64 and %d bytes", s.Size, wire.MaxPayloadBytes)
	}
	if err := s.Durability.Validate(); err != nil {
		add("durability: %w", err)
	}
	if s.Nodes < 1 || s.Nodes > len(NodeServices) {
		add("nodes: %d must be between 1 and %d", s.Nodes, len(NodeServices))
	}
	for _, g := range s.Groups {
		if err := wire.ValidateName("group", g); err != nil || strings.Contains(g, ",") {
			add("groups: %q must be a name without commas or slashes", g)
		}
	}
	for i, f := range s.Faults {
		s.validateFault(fmt.Sprintf("faults[%d] (%s)", i, f.Kind), f, add)
	}
	s.validateDeployment(add)
	return errors.Join(errs...)
}

// validateFault reports, through add, every problem of fault f.
func (s *Scenario) validateFault(where string, f Fault, add func(string, ...any)) {
	switch f.Kind {
	case KillBroker, RestartBroker:
		if s.Deployment != DeployCluster && f.Target != "" && f.Target != BrokerService {
			add("%s: target must be empty or %q", where, BrokerService)
		}
	case PartitionBroker: // validateDeployment checks its target
	case Partition, KillNode:
		if !slices.Contains(s.NodeNames(), f.Target) {
			add("%s: target %q is not one of %s", where, f.Target, strings.Join(s.NodeNames(), ", "))
		}
	default:
		add("%s: unknown kind; use %s, %s, %s, %s or %s", where, KillBroker, RestartBroker, Partition, KillNode, PartitionBroker)
	}
	if f.At < 0 || f.For <= 0 {
		add("%s: at must not be negative and for must be positive", where)
	}
	if f.At+f.For > s.Duration+s.Linger {
		add("%s: ends after the run (%s)", where, s.Duration+s.Linger)
	}
}

// NodeNames are the node services the scenario runs: the cluster's six, or
// the first Nodes of NodeServices (all if Nodes is out of range).
func (s *Scenario) NodeNames() []string {
	if s.Deployment == DeployCluster {
		return ClusterNodes
	}
	if s.Nodes < 1 || s.Nodes > len(NodeServices) {
		return NodeServices
	}
	return NodeServices[:s.Nodes]
}

// Env is the environment compose/eval.yml reads for this scenario.
func (s *Scenario) Env(logsDir string) []string {
	return append(os.Environ(),
		"EVAL_LOGS="+logsDir,
		"EVAL_RUN="+s.Name,
		"EVAL_ROOMS="+strings.Join(s.Rooms, ","),
		fmt.Sprintf("EVAL_RATE=%d", s.Rate),
		"EVAL_DURATION="+s.Duration.String(),
		fmt.Sprintf("EVAL_SIZE=%d", s.Size),
		"EVAL_LINGER="+s.Linger.String(),
		fmt.Sprintf("EVAL_ROOM_LOG=%t", *s.RoomLog),
		"EVAL_DURABILITY="+s.Durability.String(),
		fmt.Sprintf("EVAL_PEERS=%d", len(s.NodeNames())),
		fmt.Sprintf("EVAL_EXPECT=%d", s.expect()),
	)
}

// expect is every node's -expect: 0 (the peers times what each sends)
// unless the scenario kills a node. A restarted node sends everything
// again, so the others would reach their count and leave early; they expect
// one message more than can come and stay for the whole linger.
func (s *Scenario) expect() int {
	kills := 0
	for _, f := range s.Faults {
		if f.Kind == KillNode {
			kills++
		}
	}
	if kills == 0 {
		return 0
	}
	perNode := s.Rate * int(s.Duration/time.Second)
	return perNode*(len(s.NodeNames())+kills) + 1
}
