package session

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// Rooms is the rooms joined, in join order.
func (s *Session) Rooms() []string {
	return locked(s, func() []string { return slices.Clone(s.rooms) })
}

// logSubscribed logs the start of a membership once; resubscriptions after a
// reconnect continue the same membership.
func (s *Session) logSubscribed(room, to string) {
	key := room
	if to != "" {
		key = "@" + to
	}
	s.mu.Lock()
	first := !s.subLogged[key]
	s.subLogged[key] = true
	s.mu.Unlock()
	if first {
		withConv(s.entry(nodelog.EventSubscribed), room, to).Info("subscribed")
	}
}

// withConv adds the room, or for a DM the recipient, to e.
func withConv(e *logrus.Entry, room, to string) *logrus.Entry {
	if to != "" {
		return e.WithField(nodelog.FieldTo, to)
	}
	return e.WithField(nodelog.FieldRoom, room)
}

// ErrNotMember is returned when leaving a room not joined.
var ErrNotMember = errors.New("not a member of that room")

// Join subscribes to room, announces it in presence and asks the room log
// for its recent history (cfg.History messages).
func (s *Session) Join(room string) error {
	if err := wire.ValidateName("room", room); err != nil {
		return err
	}
	s.mu.Lock()
	if slices.Contains(s.rooms, room) {
		s.mu.Unlock()
		return nil
	}
	s.rooms = append(s.rooms, room)
	connected := s.link.connected
	s.mu.Unlock()
	s.p.do(func() { s.p.conv(room) })
	if !connected {
		return nil // OnConnect subscribes to every joined room
	}
	if err := s.subscribe(map[string]byte{wire.RoomFilter(room): 1}); err != nil {
		return fmt.Errorf("join %s: %w", room, err)
	}
	s.logSubscribed(room, "")
	s.publishPresence(wire.Online)
	s.p.do(func() { s.p.catchUp(room) })
	return nil
}

// Leave unsubscribes from room and forgets its position in the room log.
func (s *Session) Leave(room string) error {
	s.mu.Lock()
	i := slices.Index(s.rooms, room)
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("leave %s: %w", room, ErrNotMember)
	}
	s.rooms = slices.Delete(s.rooms, i, i+1)
	delete(s.subLogged, room)
	connected := s.link.connected
	s.mu.Unlock()
	s.p.do(func() {
		delete(s.p.convs, room)
		delete(s.p.saved, room)
		s.p.pos.changed()
	})
	if connected {
		if err := s.waitToken(s.client.Unsubscribe(wire.RoomFilter(room)), "UNSUBACK"); err != nil {
			return fmt.Errorf("leave %s: %w", room, err)
		}
		s.publishPresence(wire.Online)
	}
	s.entry(nodelog.EventUnsubscribed).WithField(nodelog.FieldRoom, room).Info("unsubscribed")
	return nil
}

// History asks the room log for the last n messages of conv; they arrive as
// Messages with Via == nodelog.ViaHistory.
func (s *Session) History(conv string, n int) {
	s.p.do(func() { s.p.history(conv, n) })
}
