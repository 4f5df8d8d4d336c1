package web

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// The web node's own log events (besides the sessions' events).
const (
	// EventStarted: the node serves the page (addr, broker).
	EventStarted = "web_started"
	eventSignIn  = "web_signin"         // a sign-in: user (when ok), remote, result (ok, refused, rate_limited)
	eventOrigin  = "web_origin_refused" // a request from another site's page: remote, path
	eventTab     = "web_tab"            // a tab opened or closed: client_id, tab, count (unacknowledged at close)
)

// sameOrigin reports whether a request comes from the page this node
// serves: its Origin names this host and scheme, or one of AllowOrigins.
// A plain request without Origin (curl) passes, but a WebSocket upgrade
// must carry one: browsers always send it there, and it is a WebSocket's
// only defence against other sites, whose handshakes carry cookies in
// older browsers.
func (s *Server) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return r.Header.Get("Upgrade") == ""
	}
	if slices.Contains(s.cfg.AllowOrigins, o) {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	scheme := "http"
	if s.cfg.TLS {
		scheme = "https"
	}
	return u.Scheme == scheme && u.Host == r.Host && u.Path == "" && u.User == nil
}

// fromPage serves h only to requests from the page this node serves
// (sameOrigin); it refuses and logs the others.
func (s *Server) fromPage(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.sameOrigin(r) {
			s.log.WithField(nodelog.FieldEvent, eventOrigin).WithField("remote", clientIP(r)).WithField("path", r.URL.Path).Warn("request from another origin refused")
			writeError(w, http.StatusForbidden, "this request comes from another site's page: refused")
			return
		}
		h(w, r)
	}
}
