package roomlog

import (
	"strings"
	"sync"

	"github.com/distchat/distchat/broker/wire"
)

// joins remembers, per client and room, the room's last sequence number when
// the client's subscription to it began. A node new to a room asks for the
// room's position (a Last request) after subscribing; answering with the
// current last sequence would be wrong, because messages stamped between the
// SUBSCRIBE and the request are still on their way to the node and would be
// taken as older than its membership. The position at subscription is exact:
// Mochi calls OnSubscribed after adding the subscription, and the hook
// stamps before Mochi routes, so every message with a higher number is
// routed to the node.
type joins struct {
	mu  sync.Mutex
	pos map[string]map[string]uint64 // client id → room → last seq at subscribe
}

// roomOfFilter returns the room of a member's filter chat/rooms/<room>/+.
func roomOfFilter(filter string) (string, bool) {
	rest, ok := strings.CutPrefix(filter, wire.Root+"/"+wire.RoomsLevel+"/")
	if !ok {
		return "", false
	}
	room, ok := strings.CutSuffix(rest, "/+")
	if !ok || wire.ValidateName("room", room) != nil {
		return "", false
	}
	return room, true
}

// subscribed records the position of a new subscription; a repeated
// SUBSCRIBE (every reconnect) keeps the first one, which is where the
// membership began.
func (j *joins) subscribed(client, room string, last uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.pos == nil {
		j.pos = map[string]map[string]uint64{}
	}
	rooms := j.pos[client]
	if rooms == nil {
		rooms = map[string]uint64{}
		j.pos[client] = rooms
	}
	if _, ok := rooms[room]; !ok {
		rooms[room] = last
	}
}

func (j *joins) unsubscribed(client, room string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.pos[client], room)
}

// forget drops a client's positions when its session ends.
func (j *joins) forget(client string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.pos, client)
}

func (j *joins) at(client, room string) (uint64, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	seq, ok := j.pos[client][room]
	return seq, ok
}
