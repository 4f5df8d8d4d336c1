package broker

import (
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	pebblestore "github.com/mochi-mqtt/server/v2/hooks/storage/pebble"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/distchat/distchat/broker/wire"
)

// sessionStore is Mochi's Pebble storage hook with chat messages left out.
//
// The room log is the one durable record of every chat message: it is
// written before the PUBACK and nodes catch up from it after any restart. A
// copy of each QoS 1 delivery in the session store (a put when it is sent, a
// delete when it is acknowledged) would be a second durable write per
// delivery that no recovery reads. So the store keeps what sessions need
// (clients, subscriptions, retained messages such as presence, and messages
// in flight on topics outside chat/, which have no room log) and writes
// without a sync per write: a kill -9 can lose the last of those writes,
// never an acknowledged chat message.
type sessionStore struct {
	*pebblestore.Hook

	// roomLog is whether the broker keeps a room log. Without one the
	// store keeps chat messages in flight too: nothing else has them.
	roomLog bool

	// mu guards persisted. No other lock is taken while it is held.
	mu sync.Mutex
	// persisted holds the in-flight messages written to the store (client
	// id and packet id), so that an acknowledgement deletes only those: an
	// acknowledgement carries no topic.
	persisted map[inflightID]struct{}
}

type inflightID struct {
	client string
	packet uint16
}

func newSessionStore(roomLog bool) *sessionStore {
	return &sessionStore{Hook: new(pebblestore.Hook), roomLog: roomLog, persisted: map[inflightID]struct{}{}}
}

// ID names the hook in Mochi's logs.
func (s *sessionStore) ID() string { return "distchat-session-store" }

// Provides is the Pebble hook's events except OnSysInfoTick. Mochi's Close
// can deliver that event from its event loop while it closes the store, and
// a write to a closed Pebble panics, ending a clean shutdown in a crash; the
// $SYS counters it would store are not needed across restarts.
func (s *sessionStore) Provides(b byte) bool {
	return b != mqtt.OnSysInfoTick && s.Hook.Provides(b)
}

// roomLoggedPrefixes are the topics whose messages the room log holds (room
// messages and DMs) or can give again (catch-up replies).
var roomLoggedPrefixes = []string{
	wire.Root + "/" + wire.RoomsLevel + "/",
	wire.Root + "/" + wire.DMLevel + "/",
	wire.Root + "/" + wire.InboxLevel + "/",
}

// roomLogged reports whether a topic's messages are in the room log.
func roomLogged(topic string) bool {
	for _, p := range roomLoggedPrefixes {
		if strings.HasPrefix(topic, p) {
			return true
		}
	}
	return false
}

// OnQosPublish stores a message in flight unless the room log holds it.
// Mochi also calls it with the PUBACK of every QoS 1 publish it receives,
// and deletes that again right after writing it: such an acknowledgement
// is never resent from the store, so it is not written.
func (s *sessionStore) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	if pk.FixedHeader.Type == packets.Puback || (s.roomLog && roomLogged(pk.TopicName)) {
		return
	}
	s.mu.Lock()
	s.persisted[inflightID{cl.ID, pk.PacketID}] = struct{}{}
	s.mu.Unlock()
	s.Hook.OnQosPublish(cl, pk, sent, resends)
}

// OnQosComplete deletes an acknowledged message if it was stored.
func (s *sessionStore) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if s.forget(cl.ID, pk.PacketID) {
		s.Hook.OnQosComplete(cl, pk)
	}
}

// OnQosDropped deletes a dropped message if it was stored.
func (s *sessionStore) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if s.forget(cl.ID, pk.PacketID) {
		s.Hook.OnQosDropped(cl, pk)
	}
}

// StoredInflightMessages hands Mochi the stored messages in flight at start
// and remembers them, so that their acknowledgements delete them.
func (s *sessionStore) StoredInflightMessages() ([]storage.Message, error) {
	msgs, err := s.Hook.StoredInflightMessages()
	s.mu.Lock()
	for _, m := range msgs {
		s.persisted[inflightID{m.Client, m.PacketID}] = struct{}{}
	}
	s.mu.Unlock()
	return msgs, err
}

func (s *sessionStore) forget(client string, packet uint16) bool {
	id := inflightID{client, packet}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.persisted[id]; !ok {
		return false
	}
	delete(s.persisted, id)
	return true
}
