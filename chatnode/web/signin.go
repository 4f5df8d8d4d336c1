package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"mime"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// cookieName is the session cookie: a random token naming a login.
const cookieName = "distchat_session"

// login is one sign-in: its user and, for the life of the sign-in only and
// in memory only, the password every tab of it connects to the broker with.
type login struct {
	user     string
	password string
	rooms    []string
	expires  time.Time
}

// logins holds the sign-ins by the SHA-256 of their token (a memory dump
// shows no usable cookie).
type logins struct {
	ttl time.Duration
	max int
	now func() time.Time

	mu     sync.Mutex          // guards byHash; no lock is taken under it
	byHash map[[32]byte]*login // sha256(token) to the login
}

// errTooManyLogins is returned when the node holds its maximum of sign-ins.
var errTooManyLogins = errors.New("too many people are signed in to this node; try again later")

// add creates a login and returns its token.
func (l *logins) add(lg *login) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	token := base64.RawURLEncoding.EncodeToString(raw[:])
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if len(l.byHash) >= l.max {
		maps.DeleteFunc(l.byHash, func(_ [32]byte, o *login) bool { return now.After(o.expires) })
		if len(l.byHash) >= l.max {
			return "", errTooManyLogins
		}
	}
	lg.expires = now.Add(l.ttl)
	l.byHash[sha256.Sum256([]byte(token))] = lg
	return token, nil
}

// get returns the unexpired login of token.
func (l *logins) get(token string) (*login, bool) {
	h := sha256.Sum256([]byte(token))
	l.mu.Lock()
	defer l.mu.Unlock()
	lg, ok := l.byHash[h]
	if ok && l.now().After(lg.expires) {
		delete(l.byHash, h)
		return nil, false
	}
	return lg, ok
}

func (l *logins) remove(token string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byHash, sha256.Sum256([]byte(token)))
}

// decoyHash is a bcrypt hash of a random password, compared against for an
// unknown user, so names cannot be probed by timing. It is made on first
// use: tens of milliseconds of CPU every node start would otherwise pay.
var decoyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte(rand.Text()), bcrypt.DefaultCost)
	if err != nil { // only for passwords over 72 bytes; rand.Text is 26
		return nil // every comparison then fails: the sign-in is refused
	}
	return h
})

// maxSignInBody bounds the sign-in request.
const maxSignInBody = 4096

// handleSignIn checks a user and password against the users file (bcrypt)
// and sets the session cookie.
func (s *Server) handleSignIn(w http.ResponseWriter, r *http.Request) {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "sign-in takes a JSON body (Content-Type: application/json)")
		return
	}
	ip := clientIP(r)
	if !s.signin.allow(ip) {
		s.log.WithField(nodelog.FieldEvent, eventSignIn).WithField("remote", ip).WithField("result", "rate_limited").Warn("sign-in refused: too many attempts")
		writeError(w, http.StatusTooManyRequests, "too many sign-in attempts from your address; wait a minute and try again")
		return
	}
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	body := http.MaxBytesReader(w, r.Body, maxSignInBody)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			writeError(w, http.StatusRequestEntityTooLarge, "sign-in request too large")
			return
		}
		writeError(w, http.StatusBadRequest, "sign-in takes {\"user\": …, \"password\": …}")
		return
	}
	u, known := s.users[req.User]
	hash := decoyHash()
	if known {
		hash = []byte(u.PasswordHash)
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(req.Password)); err != nil || !known {
		s.log.WithField(nodelog.FieldEvent, eventSignIn).WithField("remote", ip).WithField("result", "refused").Info("sign-in refused")
		writeError(w, http.StatusUnauthorized, "wrong user name or password")
		return
	}
	token, err := s.logins.add(&login{user: u.Name, password: req.Password, rooms: s.roomsOf(u.Name)})
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	http.SetCookie(w, s.cookie(token, int(s.cfg.Limits.SessionTTL.Seconds())))
	s.log.WithField(nodelog.FieldEvent, eventSignIn).WithField("remote", ip).WithField(nodelog.FieldUser, u.Name).WithField("result", "ok").Info("signed in")
	writeJSON(w, http.StatusOK, s.about(u.Name))
}

// about is what the page learns of its sign-in: the user, the rooms and
// the longest message.
func (s *Server) about(user string) map[string]any {
	return map[string]any{"user": user, "rooms": s.roomsOf(user), "max_body": s.cfg.Limits.MaxBody}
}

// roomsOf is the rooms every tab of user joins: the node's -room list when
// given, else the user's rooms in the users file, else lobby.
func (s *Server) roomsOf(user string) []string {
	if len(s.cfg.Node.Rooms) > 0 {
		return s.cfg.Node.Rooms
	}
	if u := s.users[user]; len(u.Rooms) > 0 {
		return u.Rooms
	}
	return []string{"lobby"}
}

// cookie is the session cookie: HttpOnly (no script reads it), SameSite
// Strict (no other site's page sends it), Secure when served over TLS.
func (s *Server) cookie(token string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: token, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.cfg.TLS}
}

func (s *Server) handleSignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(cookieName); err == nil {
		if lg, ok := s.logins.get(c.Value); ok {
			s.tabs.closeLogin(lg)
		}
		s.logins.remove(c.Value)
	}
	http.SetCookie(w, s.cookie("", -1))
	w.WriteHeader(http.StatusNoContent)
}

// handleMe tells the page whether it is signed in, and as whom.
func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	lg, ok := s.loginOf(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "not signed in")
		return
	}
	writeJSON(w, http.StatusOK, s.about(lg.user))
}

func (s *Server) loginOf(r *http.Request) (*login, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil, false
	}
	return s.logins.get(c.Value)
}

// clientIP is the address a request comes from (no proxy headers are
// trusted: they are the client's to forge).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // fails only when the client went away
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
