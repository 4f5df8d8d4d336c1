package broker

import (
	"os"
	"runtime"

	"github.com/distchat/distchat/config"
)

// DefaultProcs is how many processors a single broker (not a cluster node)
// runs Go code on (GOMAXPROCS) unless the environment sets GOMAXPROCS:
// one, as Mosquitto runs on one thread. Mochi hands every delivery from
// the publisher's reading goroutine to the subscriber's writing goroutine,
// and a chat message also passes the room log's hook and the
// acknowledgement flusher: with more than one processor each hand-off can
// wake a sleeping thread (a futex call, and a second thread spinning for
// work), on one it is a run-queue operation. Measured on a 2-core machine
// against the same broker on every processor: less broker CPU per
// delivery on every load of make bench-compare, a faster one-pair round
// trip, chat latencies as low or lower (docs/broker.md). A broker with
// cores of its own and more messages a second than one core carries
// (about ten thousand in a closed loop here) sets GOMAXPROCS.
const DefaultProcs = 1

// commandProcs is the processor count the broker command sets for cfg
// when the environment's GOMAXPROCS is env, or 0 to leave Go's choice: a
// cluster node keeps every processor, because the NATS server it embeds
// replicates and applies the log in goroutines of its own, beside the
// clients' (one processor for three brokers of the evaluation's cluster
// multiplied their latency), and a GOMAXPROCS in the environment is the
// operator's choice.
func commandProcs(cfg config.Broker, env string) int {
	if env != "" || cfg.Cluster.Node != "" {
		return 0
	}
	return DefaultProcs
}

// setCommandProcs applies commandProcs to the process.
func setCommandProcs(cfg config.Broker) {
	if n := commandProcs(cfg, os.Getenv("GOMAXPROCS")); n > 0 {
		runtime.GOMAXPROCS(n)
	}
}
