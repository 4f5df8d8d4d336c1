package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/chatnode/wire"
	"github.com/distchat/distchat/config"
)

// authHook is the broker's only authentication and authorization hook. Mochi
// ORs auth hooks (the first "yes" wins), so no other hook may answer these
// events: one place decides.
//
// Mochi checks the ACL on SUBSCRIBE (with the filter) and again for every
// delivery (with the concrete topic). Users may subscribe only to filters
// within their grants (see filterAllowed); an anonymous watcher may subscribe
// to chat/# and the per-delivery check shows it rooms and presence, never
// direct messages or anyone's catch-up inbox.
type authHook struct {
	mqtt.HookBase
	open      bool
	anonymous bool
	users     map[string]*config.User
	log       *logrus.Entry
	c         *counters

	// compare is bcrypt.CompareHashAndPassword (a field so tests can count calls).
	compare func(hash, password []byte) error

	mu       sync.Mutex
	verified map[string][32]byte // user -> sha256 of the last password that matched its hash
}

func newAuthHook(cfg config.Auth, open bool, log *logrus.Entry, c *counters) *authHook {
	h := &authHook{open: open, anonymous: cfg.Anonymous, users: map[string]*config.User{}, log: log,
		verified: map[string][32]byte{}, c: c, compare: bcrypt.CompareHashAndPassword}
	for i := range cfg.Users {
		h.users[cfg.Users[i].Name] = &cfg.Users[i]
	}
	return h
}

func (h *authHook) ID() string { return "distchat-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

// OnConnectAuthenticate checks the username and bcrypt password. A password
// that matched once is remembered as a SHA-256, so a reconnect storm does not
// cost one bcrypt (tens of milliseconds of CPU) per CONNECT.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.open {
		return true
	}
	name := string(pk.Connect.Username)
	fields := logrus.Fields{"client_id": cl.ID, "user": name, "remote": cl.Net.Remote}
	if name == "" {
		if h.anonymous {
			return true
		}
		h.deny(fields, "auth_failed", "no credentials and anonymous access is off")
		return false
	}
	u, ok := h.users[name]
	if !ok {
		h.deny(fields, "auth_failed", "unknown user")
		return false
	}
	sum := sha256.Sum256(pk.Connect.Password)
	h.mu.Lock()
	known, seen := h.verified[name]
	h.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(known[:], sum[:]) == 1 {
		return true
	}
	if h.compare([]byte(u.PasswordHash), pk.Connect.Password) != nil {
		h.deny(fields, "auth_failed", "wrong password")
		return false
	}
	h.mu.Lock()
	h.verified[name] = sum
	h.mu.Unlock()
	return true
}

// OnACLCheck decides whether cl may publish to (write) or receive from topic.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if h.open {
		return true
	}
	user := string(cl.Properties.Username)
	ok := h.allowed(user, topic, write)
	if !ok {
		action := "read"
		if write {
			action = "write"
		}
		fields := logrus.Fields{"client_id": cl.ID, "user": user, "topic": topic, "action": action}
		if write {
			h.deny(fields, "acl_denied", "not permitted")
		} else {
			// Read checks run for every delivery: a watcher of chat/# is
			// refused each direct message, which is filtering, not an attack.
			h.c.aclDenials.Add(1)
			h.log.WithFields(fields).WithField("event", "acl_denied").Debug("acl_denied")
		}
	}
	return ok
}

func (h *authHook) allowed(user, topic string, write bool) bool {
	if strings.HasPrefix(topic, "$") {
		return false // nobody but the broker writes $SYS; reading it is an operator's job, not a user's
	}
	if strings.ContainsAny(topic, "+#") {
		return !write && h.filterAllowed(user, topic)
	}
	t, err := wire.ParseTopic(topic)
	if err != nil {
		return false
	}
	if user == "" { // anonymous: read-only watcher of rooms and presence
		return !write && (t.Kind == wire.KindRoom || t.Kind == wire.KindPresence)
	}
	u := h.users[user]
	if u == nil {
		return false
	}
	switch t.Kind {
	case wire.KindRoom:
		return mayJoin(u, t.Room) && (!write || t.User == user)
	case wire.KindDM:
		if write {
			return t.User == user
		}
		return t.Recipient == user
	case wire.KindPresence:
		return !write || t.User == user
	case wire.KindSync:
		return write && t.User == user
	case wire.KindInbox:
		return !write && t.User == user
	}
	return false
}

// filterAllowed decides a subscription with wildcards. An anonymous watcher
// may subscribe to any filter under chat/ (chat/# included): every delivery is
// then checked against the concrete topic, so it sees rooms and presence only.
// A user may subscribe only to filters that cannot match anything they may
// not read: their granted rooms (chat/rooms/<room>/+; all rooms with
// all_rooms), their own DMs, presence, and their own inbox.
func (h *authHook) filterAllowed(user, filter string) bool {
	lv := strings.Split(filter, "/")
	if lv[0] != wire.Root || len(lv) < 2 {
		return user == "" && filter == "#"
	}
	if user == "" {
		return true
	}
	u := h.users[user]
	if u == nil {
		return false
	}
	wild := func(s string) bool { return s == "+" || s == "#" }
	switch {
	case lv[1] == wire.RoomsLevel && len(lv) == 3 && lv[2] == "#":
		return u.AllRooms
	case lv[1] == wire.RoomsLevel && len(lv) == 4:
		if wild(lv[2]) {
			return u.AllRooms && lv[2] == "+"
		}
		return mayJoin(u, lv[2])
	case lv[1] == wire.DMLevel && len(lv) == 4:
		return lv[2] == user
	case lv[1] == wire.PresenceLevel && len(lv) == 3:
		return true
	}
	return false
}

// mayJoin reports whether u may read and write room.
func mayJoin(u *config.User, room string) bool {
	if u.AllRooms {
		return true
	}
	for _, r := range u.Rooms {
		if r == room {
			return true
		}
	}
	return false
}

func (h *authHook) deny(fields logrus.Fields, event, reason string) {
	if event == "auth_failed" {
		h.c.authFailures.Add(1)
	} else {
		h.c.aclDenials.Add(1)
	}
	fields["event"] = event
	fields["reason"] = reason
	h.log.WithFields(fields).Warn(event)
}

// MayRead reports whether user may read room; the room log asks before it
// answers a catch-up request, because Mochi's inline client skips ACLs.
func (h *authHook) MayRead(user, room string) bool {
	if h.open {
		return true
	}
	if user == "" {
		return h.anonymous
	}
	u := h.users[user]
	return u != nil && mayJoin(u, room)
}
