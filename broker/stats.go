package broker

import (
	"time"

	"github.com/distchat/distchat/broker/roomlog"
)

// Stats is the JSON document served on /stats.
type Stats struct {
	UptimeS          int64 `json:"uptime_s"`
	ClientsConnected int64 `json:"clients_connected"`
	ClientsTotal     int64 `json:"clients_total"`
	Subscriptions    int64 `json:"subscriptions"`
	MessagesReceived int64 `json:"messages_received"`
	MessagesSent     int64 `json:"messages_sent"`
	Inflight         int64 `json:"inflight"`
	// InflightBytes is the payload and topic bytes of every client's
	// unacknowledged deliveries (bounded by limits.max_inflight_bytes per
	// client and limits.max_inflight_bytes_total).
	InflightBytes int64 `json:"inflight_bytes"`
	Retained      int64 `json:"retained"`
	// Drops by cause; every one is also logged as message_dropped.
	Drops        map[string]int64 `json:"drops"`
	AuthFailures int64            `json:"auth_failures"`
	// SlowSubscribersDisconnected counts connections closed because one
	// write took longer than limits.write_timeout.
	SlowSubscribersDisconnected int64          `json:"slow_subscribers_disconnected"`
	ACLDenials                  int64          `json:"acl_denials"`
	RoomLog                     *roomlog.Stats `json:"room_log,omitempty"`
	// Cluster is present in cluster mode (docs/cluster.md).
	Cluster  *ClusterStats `json:"cluster,omitempty"`
	Listener ListenerStats `json:"listener"`
}

// Stats returns a snapshot of the broker's counters.
func (s *Server) Stats() Stats {
	info := s.mochi.Info.Clone()
	st := Stats{
		UptimeS:          uptime(s.started),
		ClientsConnected: info.ClientsConnected,
		ClientsTotal:     int64(s.mochi.Clients.Len()), // Info's is refreshed only with $SYS
		Subscriptions:    info.Subscriptions,
		MessagesReceived: info.MessagesReceived,
		MessagesSent:     info.MessagesSent,
		Inflight:         info.Inflight,
		InflightBytes:    s.inflight.held(),
		Retained:         info.Retained,
		// Mochi's own counters are authoritative (every code path bumps
		// them); each drop is also logged as message_dropped by the hooks.
		Drops: map[string]int64{
			DropInflightQuota:   max(info.InflightDropped, s.c.dropsInflight.Load()),
			DropQueueFull:       max(info.MessagesDropped, s.c.dropsQueue.Load()),
			DropExpired:         s.c.dropsExpired.Load(),
			DropSessionEnded:    s.c.dropsSession.Load(),
			DropRefusedByClient: s.c.dropsRefused.Load(),
			DropPacketTooLarge:  s.c.dropsTooLarge.Load(),
			DropInflightBytes:   s.c.dropsBytes.Load(),
		},
		AuthFailures:                s.c.authFailures.Load(),
		SlowSubscribersDisconnected: s.c.stalled.Load(),
		ACLDenials:                  s.c.aclDenials.Load(),
	}
	st.Listener = s.listenerStats()
	if s.roomLog != nil {
		rs := s.roomLog.Stats()
		st.RoomLog = &rs
	}
	st.Cluster = s.clusterStats()
	return st
}

func uptime(started time.Time) int64 {
	if started.IsZero() {
		return 0 // not started yet
	}
	return int64(time.Since(started) / time.Second)
}
