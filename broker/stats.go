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
	// InflightBytes is the bytes of all unacknowledged deliveries.
	InflightBytes int64 `json:"inflight_bytes"`
	Retained      int64 `json:"retained"`
	// Drops by cause; every one is also logged as message_dropped.
	Drops        map[string]int64 `json:"drops"`
	AuthFailures int64            `json:"auth_failures"`
	// SlowSubscribersDisconnected counts connections closed by limits.write_timeout.
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
	var uptime int64 // 0 until started
	if !s.started.IsZero() {
		uptime = int64(time.Since(s.started) / time.Second)
	}
	drops := make(map[string]int64, len(dropCauses))
	for i, cause := range dropCauses {
		drops[cause] = s.c.drops[i].Load()
	}
	// Mochi's own counters are authoritative where it has them.
	drops[DropInflightQuota] = max(info.InflightDropped, drops[DropInflightQuota])
	drops[DropQueueFull] = max(info.MessagesDropped, drops[DropQueueFull])
	st := Stats{
		UptimeS:                     uptime,
		ClientsConnected:            info.ClientsConnected,
		ClientsTotal:                int64(s.mochi.Clients.Len()), // Info's is refreshed only with $SYS
		Subscriptions:               info.Subscriptions,
		MessagesReceived:            info.MessagesReceived,
		MessagesSent:                info.MessagesSent,
		Inflight:                    info.Inflight,
		InflightBytes:               s.inflight.held(),
		Retained:                    info.Retained,
		Drops:                       drops,
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
