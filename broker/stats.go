package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
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
	drops[dropInflightQuota] = max(info.InflightDropped, drops[dropInflightQuota])
	drops[dropQueueFull] = max(info.MessagesDropped, drops[dropQueueFull])
	st := Stats{
		UptimeS:                     uptime,
		ClientsConnected:            info.ClientsConnected,
		ClientsTotal:                int64(s.mochi.Clients.Len()), // Info's is refreshed only with $SYS
		Subscriptions:               info.Subscriptions,
		MessagesReceived:            info.MessagesReceived,
		MessagesSent:                info.MessagesSent,
		Inflight:                    info.Inflight,
		InflightBytes:               s.inflight.sum.Load(),
		Retained:                    info.Retained,
		Drops:                       drops,
		AuthFailures:                s.c.authFailures.Load(),
		SlowSubscribersDisconnected: s.c.stalled.Load(),
		ACLDenials:                  s.c.aclDenials.Load(),
		Listener:                    s.listenerStats(),
		Cluster:                     s.clusterStats(),
	}
	if s.roomLog != nil {
		rs := s.roomLog.Stats()
		st.RoomLog = &rs
	}
	return st
}

// ListenerStats is the MQTT TCP listener's part of /stats.
type ListenerStats struct {
	// State is the accept loop's: serving, retrying or stopped; /healthz
	// answers 503 unless serving.
	State string `json:"state"`
	// Reason is the error behind a state other than serving.
	Reason string `json:"reason,omitempty"`
	// OpenConnections counts TCP connections held, CONNECT sent or not.
	OpenConnections int64 `json:"open_connections"`
	// ConnectTimeouts counts connections closed by limits.connect_timeout.
	ConnectTimeouts int64 `json:"connect_timeouts"`
	// Refused counts connections closed at accept, by limit.
	Refused map[string]int64 `json:"refused"`
	// AcceptErrors counts temporary accept errors retried.
	AcceptErrors int64 `json:"accept_errors"`
}

func (s *Server) listenerStats() ListenerStats {
	st := ListenerStats{
		State:           acceptServing.String(),
		ConnectTimeouts: s.c.connectTimeouts.Load(),
		Refused: map[string]int64{
			refusedMaxConnections.String(): s.c.refused[refusedMaxConnections].Load(),
			refusedPerIP.String():          s.c.refused[refusedPerIP].Load(),
		},
		AcceptErrors: s.c.acceptErrors.Load(),
	}
	if s.tcpGuard != nil {
		state, reason, _ := s.tcpGuard.health()
		st.State, st.Reason = state.String(), reason
		st.OpenConnections = s.tcpGuard.conns.openConns()
	}
	return st
}

// healthz answers "ok", or 503 with the reason while the MQTT TCP listener
// cannot take new clients: a broker that takes no client is not healthy.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if s.tcpGuard != nil {
		if state, reason, _ := s.tcpGuard.health(); state != acceptServing {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "unhealthy: MQTT TCP listener %s: %s\n", state, reason)
			return
		}
	}
	fmt.Fprintln(w, "ok")
}

// httpHandler serves /healthz, /stats and, with pprof on, Go's profiler.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(s.Stats()); err != nil {
			s.log.WithError(err).Debug("write /stats")
		}
	})
	if s.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux
}
