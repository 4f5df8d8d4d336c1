package eval

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Deployments a scenario runs on.
const (
	DeploySingle = "single" // compose/eval.yml: one broker (the default)
	// DeployCluster is compose/eval-ha.yml: three brokers in cluster mode
	// and six nodes, each listing all brokers from its home broker on.
	DeployCluster = "cluster"
)

// ClusterComposeFile is the cluster deployment's compose file, beside Runner.ComposeFile.
const ClusterComposeFile = "eval-ha.yml"

// ClusterBrokers are the broker services of compose/eval-ha.yml.
var ClusterBrokers = []string{"broker1", "broker2", "broker3"}

// ClusterNodes are the chat-node services of compose/eval-ha.yml. Node i
// starts at broker (i mod 3)+1: alice and dave on broker1, bob and erin on
// broker2, carol and frank on broker3.
var ClusterNodes = []string{"alice", "bob", "carol", "dave", "erin", "frank"}

// PartitionBroker disconnects broker Target from the brokers' network for
// For (its nodes still reach it), then connects it again: a minority
// partition. Cluster deployment only.
const PartitionBroker = "partition-broker"

// clusterNetwork is the brokers' own compose network, where broker b is
// also b-peer.
const clusterNetwork = "cluster"

func (s *Scenario) brokerServices() []string {
	if s.Deployment == DeployCluster {
		return ClusterBrokers
	}
	return []string{BrokerService}
}

// brokerTarget is the service a fault hits: its target, or the only broker.
func brokerTarget(f Fault) string { return cmp.Or(f.Target, BrokerService) }

// validateDeployment reports, through add, a bad deployment and broker
// faults that do not fit it.
func (s *Scenario) validateDeployment(add func(string, ...any)) {
	switch s.Deployment {
	case DeploySingle, DeployCluster:
	default:
		add("deployment: %q is not one of %s, %s", s.Deployment, DeploySingle, DeployCluster)
		return
	}
	if s.Deployment == DeployCluster && !*s.RoomLog {
		add("room_log: the cluster shares the room log; it cannot be off")
	}
	restartEnds, restarted := time.Duration(0), ""
	for i, f := range s.Faults {
		where := fmt.Sprintf("faults[%d] (%s)", i, f.Kind)
		if f.Kind == RestartBroker && s.Deployment == DeployCluster {
			if restarted != "" && f.At < restartEnds {
				add("%s: starts before the restart of %s ends: a rolling restart takes one broker at a time", where, restarted)
			}
			restartEnds, restarted = f.At+f.For, f.Target
		}
		switch {
		case f.Kind == PartitionBroker && s.Deployment != DeployCluster:
			add("%s: needs deployment: %s", where, DeployCluster)
		case f.Kind == PartitionBroker, s.Deployment == DeployCluster && (f.Kind == KillBroker || f.Kind == RestartBroker):
			if !slices.Contains(ClusterBrokers, f.Target) {
				add("%s: target %q is not one of %s", where, f.Target, strings.Join(ClusterBrokers, ", "))
			}
		}
	}
}

// clusterEnv is what compose/eval-ha.yml reads besides Env: each node
// expects all six nodes' messages and waits for all six peers before it
// sends, as a late joiner would not get what was sent before it joined.
func (s *Scenario) clusterEnv() []string {
	if s.Deployment != DeployCluster {
		return nil
	}
	return []string{
		fmt.Sprintf("EVAL_CLUSTER_EXPECT=%d", len(ClusterNodes)*s.Rate*int(s.Duration/time.Second)),
		fmt.Sprintf("EVAL_CLUSTER_PEERS=%d", len(ClusterNodes)),
	}
}

// clusterStartTimeout bounds the wait for a cluster's JetStream leader election.
const clusterStartTimeout = 2 * time.Minute

// waitClusterStarted waits until every broker of a cluster has logged that
// it started, so each node finds its home broker up.
func (r *Runner) waitClusterStarted(ctx context.Context, s Scenario, compose composeFunc) error {
	if s.Deployment != DeployCluster {
		return nil
	}
	for waited := time.Duration(0); ; waited += time.Second {
		out, err := compose(ctx, append([]string{"logs", "--no-color"}, ClusterBrokers...)...)
		if err != nil {
			return err
		}
		lines, up := strings.Split(out, "\n"), 0
		for _, b := range ClusterBrokers {
			if slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(l, b+"_") && strings.Contains(l, `"event":"started"`) }) {
				up++
			}
		}
		if up == len(ClusterBrokers) {
			r.say("%s: the %d brokers are up", s.Name, up)
			return nil
		}
		if waited >= clusterStartTimeout {
			return fmt.Errorf("%d of %d brokers started within %s (compose logs show why)", up, len(ClusterBrokers), clusterStartTimeout)
		}
		if err := r.Sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

func (r *Runner) composeFileFor(s Scenario) string {
	if s.Deployment == DeployCluster {
		return filepath.Join(filepath.Dir(r.ComposeFile), ClusterComposeFile)
	}
	return r.ComposeFile
}
