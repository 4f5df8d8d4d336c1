// Package web is the browser face of a chat node (`chatnode web`): it
// serves one embedded page and bridges each signed-in tab to its own
// session.Session over a WebSocket, so the chat logic is the Go session
// code, not a second implementation in JavaScript. docs/web.md describes
// the design and the security settings.
package web

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/config"
)

//go:embed static
var staticFiles embed.FS

// Config is what the web node needs besides the HTTP listener itself.
type Config struct {
	// Node is the template of every tab's session; user, password and
	// rooms come from the sign-in, the state dir is <StateDir>/<user>/<tab>.
	Node         config.Node
	Users        []config.User    // the users file's accounts; sign-in checks them with bcrypt
	TLS          bool             // the listener serves HTTPS: cookies are Secure then
	AllowOrigins []string         // extra page origins (scheme://host:port), e.g. behind a proxy rewriting Host
	Limits       Limits           // DefaultLimits when zero
	Now          func() time.Time // the clock (time.Now when nil); tests drive it
}

// Limits bound what one browser or all of them may cost the node.
type Limits struct {
	MaxTabs, MaxTabsPerUser int     // open tabs, each an MQTT connection and a state dir in use
	MaxBody                 int     // the longest message text in bytes
	SendRate                float64 // messages one tab sends per second, bursts of SendBurst
	SendBurst               int
	// SignInPerMinute and SignInBurst bound the sign-in attempts from one
	// address, so passwords cannot be guessed at bcrypt speed.
	SignInPerMinute float64
	SignInBurst     int
	SessionTTL      time.Duration // how long a sign-in lasts
	MaxLogins       int           // sign-ins held in memory at most
}

// DefaultLimits are the limits of `chatnode web` without flags.
func DefaultLimits() Limits {
	return Limits{MaxTabs: 64, MaxTabsPerUser: 8, MaxBody: 4000, SendRate: 5, SendBurst: 10,
		SignInPerMinute: 10, SignInBurst: 5, SessionTTL: 12 * time.Hour, MaxLogins: 1000}
}

// Server serves the page, the sign-in API and the tabs' WebSockets.
type Server struct {
	cfg    Config
	log    *logrus.Entry
	logins *logins
	tabs   *tabs
	signin *limiterSet
	users  map[string]config.User
	mux    *http.ServeMux
}

// New builds the server. Close ends every tab's session.
func New(cfg Config, log *logrus.Entry) (*Server, error) {
	if cfg.Node.StateDir == "" {
		return nil, errors.New("web: a state dir is required (each tab's device state lives under it)")
	}
	if len(cfg.Users) == 0 {
		return nil, errors.New("web: a users file with at least one user is required (sign-in checks it)")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	s := &Server{
		cfg:    cfg,
		log:    log,
		logins: &logins{ttl: cfg.Limits.SessionTTL, max: cfg.Limits.MaxLogins, now: cfg.Now, byHash: map[[32]byte]*login{}},
		tabs:   newTabs(cfg.Limits.MaxTabs, cfg.Limits.MaxTabsPerUser),
		signin: &limiterSet{rate: cfg.Limits.SignInPerMinute / 60, burst: cfg.Limits.SignInBurst, now: cfg.Now, buckets: map[string]*bucket{}},
		users:  map[string]config.User{},
		mux:    http.NewServeMux(),
	}
	for _, u := range cfg.Users {
		s.users[u.Name] = u
	}
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("web: embedded page: %w", err)
	}
	s.mux.Handle("GET /", http.FileServerFS(static))
	s.mux.HandleFunc("POST /api/signin", s.fromPage(s.handleSignIn))
	s.mux.HandleFunc("POST /api/signout", s.fromPage(s.handleSignOut))
	s.mux.HandleFunc("GET /api/me", s.handleMe)
	s.mux.HandleFunc("GET /ws", s.fromPage(s.handleWS))
	return s, nil
}

// ServeHTTP adds the security headers to every answer and routes it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	if s.cfg.TLS {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	s.mux.ServeHTTP(w, r)
}

// Close ends every open tab (its session says offline and saves its state)
// and waits for them.
func (s *Server) Close() { s.tabs.closeAll() }
