package broker

import (
	"context"
	"errors"

	"github.com/distchat/distchat/broker/cluster"
	"github.com/distchat/distchat/broker/roomlog"
)

// attachRoomLog adds the room log: a single broker's file log, or in
// cluster mode the log replicated over embedded JetStream (docs/cluster.md).
func (s *Server) attachRoomLog() (*roomlog.Hook, error) {
	log := s.log.WithField("component", "roomlog")
	if !s.cfg.Cluster.Enabled() {
		return roomlog.Attach(s.mochi, s.cfg.RoomLog, s.cfg.Durability, s.cfg.DataDir, log)
	}
	ctx := context.Background() // each wait below has its own deadline
	node, err := cluster.Start(ctx, s.cfg.Cluster, s.cfg.DataDir, s.cfg.Limits.MaxPacketSize, s.log.WithField("component", "cluster"))
	if err != nil {
		return nil, err
	}
	s.node = node
	store, err := cluster.OpenLog(ctx, node, s.cfg.DataDir, cluster.LogOptions{Replicas: s.cfg.Cluster.Replicas,
		Partitions: s.cfg.Cluster.Partitions, BatchInterval: s.cfg.Cluster.BatchInterval, Retention: s.cfg.RoomLog, Restamp: roomlog.Restamp}, log)
	if err != nil {
		return nil, err
	}
	s.logView = store
	h, err := roomlog.AttachStore(s.mochi, store, s.cfg.RoomLog, log)
	if err != nil {
		return nil, err
	}
	store.SetObserver(h)
	h.Reindex() // conversations other brokers started while the hook was built
	if err := s.sharePresence(ctx, node); err != nil {
		return nil, errors.Join(err, store.Close())
	}
	if err := s.followSessionMoves(node); err != nil {
		return nil, errors.Join(err, store.Close())
	}
	return h, nil
}

// sharePresence makes a user's presence the same on every broker: online
// while any device on any broker is (cluster.Presence).
func (s *Server) sharePresence(ctx context.Context, node *cluster.Node) error {
	log := s.log.WithField("component", "presence")
	shared, err := cluster.OpenPresence(ctx, node, cluster.PresenceOptions{Replicas: s.cfg.Cluster.Replicas}, log)
	if err != nil {
		return err
	}
	s.presence.log = log
	s.presence.publish = func(topic string, payload []byte) error {
		return s.retain.publishRetained(func() error { return s.mochi.Publish(topic, payload, true, 1) })
	}
	shared.OnChange = s.presence.republish
	s.presence.shared = shared
	runCtx, cancel := context.WithCancel(context.Background())
	s.stopShared = cancel
	s.sharing.Go(func() {
		if err := shared.Run(runCtx); err != nil {
			log.WithError(err).Error("presence: sharing with the other brokers stopped")
		}
	})
	return nil
}

// closeNode stops the embedded NATS server, after Mochi has stopped.
func (s *Server) closeNode() error {
	if s.node == nil {
		return nil
	}
	return s.node.Close()
}

// stopClusterAppends abandons the replicated room log's appends still
// waiting on the cluster, so that Mochi's Close, which waits for every
// client's publish in progress, ends even without a majority to answer.
func (s *Server) stopClusterAppends() {
	if s.logView != nil {
		s.logView.StopAppends()
	}
}

// stopSharing ends the presence sharing and the session moves with the
// other brokers before Mochi stops: Mochi's closed session store panics on
// a retained write, and a session dropped while Mochi closes its clients
// would take its client list's lock in the middle of Close's.
func (s *Server) stopSharing() {
	if s.sessionMoves != nil {
		s.sessionMoves.Stop()
	}
	if s.stopShared != nil {
		s.stopShared()
		s.sharing.Wait()
	}
}

// Kill stops the broker as a crash would look to its clients and the other
// brokers: the cluster node goes first, without a goodbye, then every
// client connection. For failover tests; a single broker is just closed.
func (s *Server) Kill() error {
	if s.node == nil {
		return s.Close()
	}
	s.node.Kill()
	_ = s.Close() // closing after the kill fails by design
	return nil
}

// ClusterStats is the "cluster" part of /stats.
type ClusterStats struct {
	Node         string   `json:"node"`
	Routes       int      `json:"routes"`         // route connections to other brokers up
	RouteMsgsIn  int64    `json:"route_msgs_in"`  // messages the routes carried in since start
	RouteMsgsOut int64    `json:"route_msgs_out"` // and out
	Leading      []string `json:"leading"`        // the room log's partition streams led here
	// LogApplied is the sum of the room log streams' sequences applied
	// here; brokers that agree on it serve the same log.
	LogApplied uint64 `json:"log_applied"`
	// Batches and BatchedRecords are this broker's sequencer's writes and
	// their records; Forwarded its clients' appends another broker
	// sequenced; WrongLast writes refused as another sequencer came first;
	// AtomicFallbacks batches appended one by one instead.
	Batches         int64 `json:"batches"`
	BatchedRecords  int64 `json:"batched_records"`
	Forwarded       int64 `json:"forwarded"`
	WrongLast       int64 `json:"wrong_last"`
	AtomicFallbacks int64 `json:"atomic_fallbacks"`
}

func (s *Server) clusterStats() *ClusterStats {
	if s.node == nil || s.logView == nil {
		return nil
	}
	c := s.logView.AppendCounts()
	in, out := s.node.RouteMessages()
	return &ClusterStats{Node: s.node.Name(), Routes: s.node.Routes(), RouteMsgsIn: in, RouteMsgsOut: out,
		Leading: s.logView.Leading(), LogApplied: s.logView.Applied(),
		Batches: c.Batches.Load(), BatchedRecords: c.BatchedRecords.Load(), Forwarded: c.Forwarded.Load(),
		WrongLast: c.WrongLast.Load(), AtomicFallbacks: c.AtomicFallbacks.Load()}
}
