package broker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
)

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
			refusedMaxConnections.String(): s.c.refusedMax.Load(),
			refusedPerIP.String():          s.c.refusedPerIP.Load(),
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
