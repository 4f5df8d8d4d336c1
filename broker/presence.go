package broker

import (
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/cluster"
	"github.com/distchat/distchat/broker/wire"
)

// presenceHook makes presence per user, not per device: each device leaves
// a Will "offline" on chat/presence/<user>, so the first to go would show
// the user offline while another is online. The hook rewrites what reaches
// the topic into the presence over all the user's devices.
type presenceHook struct {
	mqtt.HookBase
	mu    sync.Mutex                          // guards users and owner; taken after no other lock
	users map[string]map[string]wire.Presence // user → client id → its last online presence
	owner map[string]string                   // client id → user, for OnDisconnect

	shared  *cluster.Presence // the other brokers' presence in cluster mode
	publish func(topic string, payload []byte) error
	log     *logrus.Entry
}

// republish publishes user's presence after another broker's part changed.
func (h *presenceHook) republish(user string) {
	h.mu.Lock()
	local := h.localLocked(user, nil)
	h.mu.Unlock()
	now := time.Now().UnixNano()
	out, ok := combine(user, local, h.shared.Others(user), now, "")
	if !ok {
		out = wire.Presence{V: wire.Version, User: user, Status: wire.Offline, AtNS: now}
	}
	b, _ := json.Marshal(out) // plain data: it cannot fail
	if err := h.publish(wire.PresenceTopic(user), b); err != nil {
		h.log.WithError(err).WithField("user", user).Error("presence from another broker not published")
	}
}

func newPresenceHook() *presenceHook {
	return &presenceHook{users: map[string]map[string]wire.Presence{}, owner: map[string]string{}}
}

func (h *presenceHook) ID() string { return "distchat-presence" }

func (h *presenceHook) Provides(b byte) bool {
	return b == mqtt.OnPublish || b == mqtt.OnWill || b == mqtt.OnDisconnect
}

// OnPublish rewrites a presence publish into the user's presence over all
// devices. Mochi calls it after the ACL check and retains what it returns.
func (h *presenceHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !cl.Net.Inline {
		pk.Payload = h.merge(cl.ID, pk.TopicName, pk.Payload, false)
	}
	return pk, nil
}

// OnWill turns a device's "offline" Will into the user's remaining
// presence; a connection taken over keeps its device online.
func (h *presenceHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	will.Payload = h.merge(cl.ID, will.TopicName, will.Payload, cl.IsTakenOver())
	return will, nil
}

// OnDisconnect forgets a device whose connection ended, unless taken over.
func (h *presenceHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	if cl.IsTakenOver() {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if user, ok := h.owner[cl.ID]; ok {
		h.forget(user, cl.ID)
	}
}

// forget drops device of user; h.mu is held.
func (h *presenceHook) forget(user, device string) {
	delete(h.users[user], device)
	if len(h.users[user]) == 0 {
		delete(h.users, user)
	}
	if h.owner[device] == user {
		delete(h.owner, device)
	}
}

// merge records device's presence for a payload on a presence topic and
// returns the presence over all the user's online devices on every broker
// to send instead; any other payload it returns as it is. keep leaves the
// device online.
func (h *presenceHook) merge(device, topic string, payload []byte, keep bool) []byte {
	t, err := wire.ParseTopic(topic)
	if err != nil || t.Kind != wire.KindPresence || len(payload) == 0 {
		return payload
	}
	user := t.User
	p, err := wire.DecodePresence(payload)
	if err != nil || p.User != user {
		return payload // the ACL let it through; the nodes skip it as malformed
	}
	var first []string // the rooms listed first: those of an online publish
	h.mu.Lock()
	switch {
	case p.Status == wire.Online:
		if h.users[user] == nil {
			h.users[user] = map[string]wire.Presence{}
		}
		h.users[user][device] = p
		h.owner[device] = user
		first = p.Rooms
	case !keep:
		h.forget(user, device)
	}
	local := h.localLocked(user, first)
	h.mu.Unlock()
	var others []wire.Presence
	if h.shared != nil {
		h.shared.Set(user, local)
		others = h.shared.Others(user)
	}
	out, ok := combine(user, local, others, p.AtNS, p.Device)
	if !ok {
		return payload
	}
	b, _ := json.Marshal(out) // plain data: it cannot fail
	return b
}

// localLocked is user's presence over this broker's devices, rooms in
// first's order and then the devices' (by client id), or nil; h.mu is held.
func (h *presenceHook) localLocked(user string, first []string) *wire.Presence {
	devs := h.users[user]
	if len(devs) == 0 {
		return nil
	}
	out := wire.Presence{V: wire.Version, User: user, Status: wire.Online, Devices: len(devs), Rooms: slices.Clone(first)}
	for _, id := range slices.Sorted(maps.Keys(devs)) {
		out.Rooms = addRooms(out.Rooms, devs[id].Rooms)
	}
	return &out
}

// addRooms appends to rooms those of more it lacks, in order.
func addRooms(rooms, more []string) []string {
	for _, r := range more {
		if !slices.Contains(rooms, r) {
			rooms = append(rooms, r)
		}
	}
	return rooms
}

// combine is user's presence over local (may be nil) and the other
// brokers', stamped atNS by device; ok false when none is online.
func combine(user string, local *wire.Presence, others []wire.Presence, atNS int64, device string) (wire.Presence, bool) {
	if local == nil && len(others) == 0 {
		return wire.Presence{}, false
	}
	out := wire.Presence{V: wire.Version, User: user, Status: wire.Online, AtNS: atNS, Device: device}
	all := others
	if local != nil {
		all = append([]wire.Presence{*local}, others...)
	}
	for _, p := range all {
		out.Devices += p.Devices
		out.Rooms = addRooms(out.Rooms, p.Rooms)
	}
	return out, true
}
