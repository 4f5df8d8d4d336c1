package broker

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	pebblestore "github.com/mochi-mqtt/server/v2/hooks/storage/pebble"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/distchat/distchat/broker/wire"
)

// sessionStore is Mochi's Pebble storage hook with chat messages left out:
// the room log is their one durable record, written before the PUBACK, and
// a copy of each delivery here would be a second write per delivery. The
// store keeps the rest without a sync per write (a kill -9 can lose the
// last of it, never an acknowledged chat message); the chat messages a
// persistent session holds come back from the room log at start, by the
// session marks (sessionMarks).
type sessionStore struct {
	*guardedPebble

	roomLog bool         // the broker keeps a room log; without one, chat messages are stored too
	marks   *marksKeeper // recovers persistent sessions' chat messages; nil without a room log
	// loadedClients and loadedSubs are what StoredClients and
	// StoredSubscriptions handed Mochi at start, so the store is read once:
	// each read leaves a Pebble iterator open in Mochi v2.7.9's hook.
	loadedClients []storage.Client
	loadedSubs    []storage.Subscription

	// mu guards persisted, the in-flight messages written to the store, so
	// that only their acknowledgements (which carry no topic) delete
	// anything. No other lock is taken while it is held.
	mu        sync.Mutex
	persisted map[inflightID]struct{}
}

type inflightID struct {
	client string
	packet uint16
}

func newSessionStore(roomLog bool) *sessionStore {
	return &sessionStore{guardedPebble: &guardedPebble{Hook: new(pebblestore.Hook)}, roomLog: roomLog, persisted: map[inflightID]struct{}{}}
}

// ID names the hook in Mochi's logs.
func (s *sessionStore) ID() string { return "distchat-session-store" }

// Provides is the Pebble hook's events except OnSysInfoTick: Mochi's Close
// can deliver it while it closes the store, and a write to a closed Pebble
// panics; the $SYS counters it stores are not needed across restarts.
func (s *sessionStore) Provides(b byte) bool { return b != mqtt.OnSysInfoTick && s.Hook.Provides(b) }

// roomLoggedPrefixes are the topics whose messages the room log holds (room
// messages and DMs) or can give again (catch-up replies).
var roomLoggedPrefixes = []string{
	wire.Root + "/" + wire.RoomsLevel + "/",
	wire.Root + "/" + wire.DMLevel + "/",
	wire.Root + "/" + wire.InboxLevel + "/",
}

func roomLogged(topic string) bool {
	return slices.ContainsFunc(roomLoggedPrefixes, func(p string) bool { return strings.HasPrefix(topic, p) })
}

// OnQosPublish stores a message in flight unless the room log holds it.
// Mochi also calls it with each inbound QoS 1 publish's PUBACK, which is
// never resent from the store, so that is not written.
func (s *sessionStore) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	if pk.FixedHeader.Type == packets.Puback || (s.roomLog && roomLogged(pk.TopicName)) {
		return
	}
	s.mu.Lock()
	s.persisted[inflightID{cl.ID, pk.PacketID}] = struct{}{}
	s.mu.Unlock()
	s.write(func() { s.Hook.OnQosPublish(cl, pk, sent, resends) })
}

// OnQosComplete deletes an acknowledged message if it was stored.
func (s *sessionStore) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if s.forget(cl.ID, pk.PacketID) {
		s.write(func() { s.Hook.OnQosComplete(cl, pk) })
	}
}

// OnQosDropped deletes a dropped message if it was stored.
func (s *sessionStore) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if s.forget(cl.ID, pk.PacketID) {
		s.write(func() { s.Hook.OnQosDropped(cl, pk) })
	}
}

// StoredInflightMessages hands Mochi the stored messages in flight at start
// and remembers them, so that their acknowledgements delete them; with a
// room log it adds the chat messages persistent sessions are owed.
func (s *sessionStore) StoredInflightMessages() ([]storage.Message, error) {
	msgs, err := s.Hook.StoredInflightMessages()
	s.mu.Lock()
	for _, m := range msgs {
		s.persisted[inflightID{m.Client, m.PacketID}] = struct{}{}
	}
	s.mu.Unlock()
	if err != nil || s.marks == nil {
		return msgs, err
	}
	// Mochi v2.7.9 (readStore) asks for clients and subscriptions first.
	return append(msgs, s.marks.recover(msgs, s.loadedClients, s.loadedSubs)...), nil
}

// StoredClients hands Mochi the stored sessions, and with a room log the
// persistent sessions the marks name that the store lost (sessionMarks).
func (s *sessionStore) StoredClients() ([]storage.Client, error) {
	clients, err := s.Hook.StoredClients()
	if err != nil {
		return nil, fmt.Errorf("stored clients: %w", err)
	}
	if s.marks != nil {
		clients = s.marks.clients(clients)
	}
	s.loadedClients = clients
	return clients, nil
}

// StoredSubscriptions hands Mochi the stored subscriptions, and with a
// room log the chat subscriptions the marks name that the store lost.
func (s *sessionStore) StoredSubscriptions() ([]storage.Subscription, error) {
	subs, err := s.Hook.StoredSubscriptions()
	if err != nil {
		return nil, fmt.Errorf("stored subscriptions: %w", err)
	}
	if s.marks != nil {
		subs = s.marks.subscriptions(subs)
	}
	s.loadedSubs = subs
	return subs, nil
}

// Stop takes the session marks a last time, while Mochi still holds every
// session, then closes the store.
func (s *sessionStore) Stop() error {
	if s.marks != nil {
		s.marks.close()
	}
	return s.guardedPebble.Stop()
}

func (s *sessionStore) forget(client string, packet uint16) bool {
	id := inflightID{client, packet}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.persisted[id]
	delete(s.persisted, id)
	return ok
}
