package broker

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// authHook is the broker's only authentication and authorization hook:
// Mochi ORs auth hooks (the first "yes" wins), so one place must decide.
// Mochi checks the ACL on SUBSCRIBE (with the filter) and again for every
// delivery (with the concrete topic), so an anonymous watcher of chat/#
// sees rooms and presence, never direct messages or anyone's inbox.
type authHook struct {
	mqtt.HookBase
	open      bool
	anonymous bool
	users     map[string]*config.User
	log       *logrus.Entry
	c         *counters

	// compare is bcrypt.CompareHashAndPassword (a field so tests can count calls).
	compare func(hash, password []byte) error
	// sessions are Mochi's, to find a client id's user; inflight refuses a
	// delivery over its byte bounds, reported through dropped. Both are nil
	// in unit tests.
	sessions *mqtt.Clients
	inflight *inflightBytes
	dropped  func(client, topic string)

	accepted sync.Map // *mqtt.Client keys OnConnect accepted, until OnConnectAuthenticate

	mu       sync.Mutex          // guards verified; held for no I/O or bcrypt
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

// Provides includes OnSubscribe only to log refused filters at WARN:
// OnACLCheck cannot tell a subscription from a delivery.
func (h *authHook) Provides(b byte) bool {
	return slices.Contains([]byte{mqtt.OnPacketRead, mqtt.OnConnect, mqtt.OnConnectAuthenticate,
		mqtt.OnACLCheck, mqtt.OnSubscribe}, b)
}

// decoyHash is a bcrypt hash of a random password, made on first use, that
// unknown users' passwords are compared against.
var decoyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte(rand.Text()), bcrypt.DefaultCost) // fails only over 72 bytes; rand.Text is 26
	return h
})

// OnPacketRead lets an empty password through Mochi's own check
// (allowEmptyPassword) and refuses the 3.1.1 way an MQTT 3.1.1 CONNECT that
// Mochi would refuse with an MQTT 5 code (check311). Rejecting the packet
// makes Mochi close the connection without a CONNACK of its own.
func (h *authHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	pk = allowEmptyPassword(pk)
	if cl.ID != "" { // Mochi sets the id from the first CONNECT: this is a later packet
		return pk, nil
	}
	r, refuse := check311(pk)
	if !refuse {
		return pk, nil
	}
	fields := logrus.Fields{"event": logevent.ConnectRefused, "remote": cl.Net.Remote, "client_id": clip(pk.Connect.ClientIdentifier),
		"protocol": pk.ProtocolVersion, "reason": r.why}
	if r.connack {
		fields["connack"] = int(r.code.Code)
	}
	h.log.WithFields(fields).Warn("connect_refused")
	if r.connack {
		if err := sendConnack(cl, r.code); err != nil {
			return pk, fmt.Errorf("%w: %w", err, packets.ErrRejectPacket)
		}
	}
	return pk, packets.ErrRejectPacket
}

// OnConnect decides the CONNECT and refuses it with a CONNACK code valid
// for the client's protocol version: Mochi's own refusal sends 3.1.1
// clients "not authorized" (5) for a bad password, where 3.1.1 has "bad
// user name or password" (4). A hook error here ends the connection with
// no CONNACK of Mochi's.
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	v := h.authenticate(cl, pk)
	if v == connectAccepted {
		v = h.checkWill(cl, pk)
	}
	if v == connectAccepted {
		h.accepted.Store(cl, struct{}{})
		return nil
	}
	if err := sendConnack(cl, v.code(cl.Properties.ProtocolVersion)); err != nil {
		return err
	}
	return v.code(5)
}

// OnConnectAuthenticate accepts exactly the clients OnConnect accepted:
// Mochi calls it right after OnConnect, and only when that returned nil.
func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	_, ok := h.accepted.LoadAndDelete(cl)
	return ok
}

// authenticate checks the username and bcrypt password, then that the
// client id is not another user's. A password that matched once is
// remembered as a SHA-256, so a reconnect storm costs no bcrypt per CONNECT.
func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet) connectVerdict {
	name := string(pk.Connect.Username)
	fields := logrus.Fields{"client_id": clip(cl.ID), "user": clip(name), "remote": cl.Net.Remote}
	if cl.ID == mqtt.InlineClientId {
		// Connecting with the room log's inline client id would take it over.
		h.deny(fields, logevent.AuthFailed, "client id is reserved for the broker")
		return connectNotAuthorized
	}
	if h.open {
		return connectAccepted
	}
	if name == "" {
		if !h.anonymous {
			h.deny(fields, logevent.AuthFailed, "no credentials and anonymous access is off")
			return connectBadCredentials
		}
		return h.ownsClientID(cl.ID, name, fields)
	}
	if len(pk.Connect.Password) == 0 { // no bcrypt for any user: the timing tells nothing
		h.deny(fields, logevent.AuthFailed, "empty password")
		return connectBadCredentials
	}
	u, ok := h.users[name]
	if !ok { // spend a bcrypt anyway: the timing must not tell which users exist
		reason := "unknown user"
		if h.compare(decoyHash(), pk.Connect.Password) == nil {
			reason = "unknown user (the decoy password matched)"
		}
		h.deny(fields, logevent.AuthFailed, reason)
		return connectBadCredentials
	}
	sum := sha256.Sum256(pk.Connect.Password)
	h.mu.Lock()
	known, seen := h.verified[name]
	h.mu.Unlock()
	if !seen || subtle.ConstantTimeCompare(known[:], sum[:]) != 1 {
		if h.compare([]byte(u.PasswordHash), pk.Connect.Password) != nil {
			h.deny(fields, logevent.AuthFailed, "wrong password")
			return connectBadCredentials
		}
		h.mu.Lock()
		h.verified[name] = sum
		h.mu.Unlock()
	}
	return h.ownsClientID(cl.ID, name, fields)
}

// ownsClientID refuses a client id that belongs to another known user:
// Mochi hands a persistent session to whoever connects with its client id,
// without asking any hook, so the id itself must be guarded.
func (h *authHook) ownsClientID(id, user string, fields logrus.Fields) connectVerdict {
	if owner := h.clientIDOwner(id, user); owner != "" {
		fields["client_id_owner"] = clip(owner)
		h.deny(fields, logevent.AuthFailed, "client id belongs to another user")
		return connectNotAuthorized
	}
	// Any other id: refuse it while another user's session holds it.
	if h.sessions != nil {
		if cl, ok := h.sessions.Get(id); ok && string(cl.Properties.Username) != user {
			fields["client_id_owner"] = clip(string(cl.Properties.Username))
			h.deny(fields, logevent.AuthFailed, "client id is in use by another user's session")
			return connectNotAuthorized
		}
	}
	return connectAccepted
}

// clientIDOwner returns a known user other than user whom id belongs to, or
// "": u's ids are u, "u-*" and "*-u" (chat nodes use "<user>-<device>");
// one that belongs to two users ("alice-bob") is usable by neither.
func (h *authHook) clientIDOwner(id, user string) string {
	other := func(u string) bool { _, ok := h.users[u]; return ok && u != user }
	if other(id) {
		return id
	}
	for i := range len(id) {
		if id[i] != '-' {
			continue
		}
		for _, u := range []string{id[:i], id[i+1:]} {
			if other(u) {
				return u
			}
		}
	}
	return ""
}

// OnSubscribe logs each refused filter with the reason (the SUBACK tells
// the client nothing); OnACLCheck then decides and counts.
func (h *authHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if h.open || cl.Net.Inline {
		return pk
	}
	user := string(cl.Properties.Username)
	for _, f := range pk.Filters {
		if h.allowed(user, f.Filter, false) {
			continue
		}
		h.log.WithFields(logrus.Fields{"client_id": clip(cl.ID), "user": clip(user), "topic": clip(f.Filter), "action": "subscribe",
			"event": logevent.ACLDenied, "reason": subscribeRefusal(user, f.Filter)}).Warn("acl_denied")
	}
	return pk
}

func subscribeRefusal(user, filter string) string {
	switch {
	case strings.HasPrefix(filter, "$"):
		return "$ topics are reserved for the broker"
	case user == "":
		return "anonymous clients may subscribe only under chat/"
	}
	return "filter reaches beyond the user's grants"
}

// OnACLCheck decides whether cl may publish to (write) or receive from
// topic. Publishes under chat/ must follow the topic scheme in every mode,
// so nothing downstream sees a malformed one.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	fields := func(action string) logrus.Fields {
		return logrus.Fields{"client_id": clip(cl.ID), "user": clip(user), "topic": clip(topic), "action": action}
	}
	if write {
		if problem := topicProblem(topic); problem != "" {
			h.deny(fields("write"), logevent.ACLDenied, problem)
			return false
		}
	} else if h.inflight != nil && !h.inflight.admit(cl.ID) {
		h.dropped(cl.ID, topic)
		return false
	}
	if h.open {
		return true
	}
	ok := h.allowed(user, topic, write)
	if !ok {
		if write {
			h.deny(fields("write"), logevent.ACLDenied, "not permitted")
		} else { // a per-delivery refusal is filtering, not an attack: DEBUG only
			h.c.aclDenials.Add(1)
			h.log.WithFields(fields("read")).WithField("event", logevent.ACLDenied).Debug("acl_denied")
		}
	}
	return ok
}

// topicProblem says what is wrong with a publish topic under chat/, or "".
func topicProblem(topic string) string {
	if topic != wire.Root && !strings.HasPrefix(topic, wire.Root+"/") {
		return ""
	}
	if _, err := wire.ParseTopic(topic); err != nil {
		// Drop the topic the error repeats: it is a field of the log line.
		return clipTo("malformed chat topic: "+strings.TrimPrefix(err.Error(), fmt.Sprintf("topic %q: ", topic)), maxLoggedReason)
	}
	return ""
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
// may subscribe to any filter under chat/ (each delivery is checked); a
// user only to filters that match nothing they may not read: their granted
// rooms (all with all_rooms), their own DMs, and presence.
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
func mayJoin(u *config.User, room string) bool { return u.AllRooms || slices.Contains(u.Rooms, room) }

func (h *authHook) deny(fields logrus.Fields, event, reason string) {
	if event == logevent.AuthFailed {
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

// UserExists reports whether user is a configured account (every name in
// open mode): a DM to a made-up name would cost the room log memory.
func (h *authHook) UserExists(user string) bool {
	if h.open {
		return true
	}
	return h.users[user] != nil
}

// checkWill refuses a CONNECT whose Last Will the client could not publish
// itself. Mochi publishes a Will without the ACL check or any OnPublish
// hook, so it is checked here, once: it must be a topic the user may write
// (in open mode, any that fits the scheme), and never a chat message or
// catch-up request, which must pass through the room log as a publish.
func (h *authHook) checkWill(cl *mqtt.Client, pk packets.Packet) connectVerdict {
	if !pk.Connect.WillFlag {
		return connectAccepted
	}
	topic := pk.Connect.WillTopic
	user := string(pk.Connect.Username)
	reason := willProblem(topic)
	if reason == "" && !h.open && !h.allowed(user, topic, true) {
		reason = "the user may not publish on the Will's topic"
	}
	if reason == "" {
		return connectAccepted
	}
	h.deny(logrus.Fields{"client_id": clip(cl.ID), "user": clip(user), "remote": cl.Net.Remote, "topic": clip(topic)},
		logevent.WillRefused, reason)
	return connectNotAuthorized
}

// willProblem says why topic can never carry a Will, or returns "".
func willProblem(topic string) string {
	if problem := topicProblem(topic); problem != "" {
		return problem
	}
	t, err := wire.ParseTopic(topic)
	if err != nil {
		return "" // outside chat/: the ACL decides
	}
	switch t.Kind {
	case wire.KindRoom, wire.KindDM, wire.KindSync, wire.KindInbox:
		return "a Will cannot carry a " + t.Kind.String() + " message: chat messages pass through the room log as publishes"
	}
	return ""
}
