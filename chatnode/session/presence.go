package session

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// Presence: every user publishes a retained presence message (online with
// its rooms, or offline; the Last Will says offline when a node dies). The
// pipeline reads everyone's (handlePresence) into a presenceBook, which Who
// answers from, and reports changes as PresenceChange events.
// The node's own presence is published by publishPresence.

// presenceState is the session's presence job: its own presence publishes
// and everyone's last presence.
type presenceState struct {
	// mu orders presence publishes against quitting: once leaving is set
	// (the node says offline), no device-level "online" follows.
	mu          sync.Mutex
	leaving     bool        // guarded by mu
	reasserting atomic.Bool // an "online again" publish is under way
	// book is everyone's last presence (its own lock).
	book *presenceBook
}

// presenceBook is the last presence seen per user.
type presenceBook struct {
	mu    sync.Mutex // guards users; held for no I/O and taken after no other lock
	users map[string]wire.Presence
}

func newPresenceBook() *presenceBook { return &presenceBook{users: map[string]wire.Presence{}} }

// record stores pr and returns what was known of its user before.
func (b *presenceBook) record(pr wire.Presence) (wire.Presence, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	prev, had := b.users[pr.User]
	b.users[pr.User] = pr
	return prev, had
}

// online lists the users online in room (any room when room is ""), sorted.
func (b *presenceBook) online(room string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for u, p := range b.users {
		if p.Status == wire.Online && (room == "" || slices.Contains(p.Rooms, room)) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// handlePresence records a presence message and reports what changed.
func (p *pipeline) handlePresence(m inbound, t wire.Topic) {
	if len(m.payload) == 0 {
		return // a cleared retained message
	}
	pr, err := wire.DecodePresence(m.payload)
	if err == nil && pr.User != t.User {
		err = fmt.Errorf("%w: presence of %q on %s's topic", wire.ErrMalformed, pr.User, t.User)
	}
	if err != nil {
		p.malformed(m, err)
		return
	}
	prev, had := p.recordPresence(pr)
	ch, changed := presenceChange(prev, had, pr)
	if !changed {
		return
	}
	ch.Retained = m.retained
	if pr.User == p.me && pr.Status == wire.Offline && !m.retained && pr.Device != p.clientID {
		p.ownDeviceLeft() // another device of ours went, and took our presence with it
	}
	if pr.User != p.me {
		p.log.WithField(nodelog.FieldEvent, nodelog.EventPresence).WithField(nodelog.FieldUser, pr.User).WithField(nodelog.FieldStatus, pr.Status).Info("presence")
	}
	p.emit(ch)
}

// presenceChange compares a user's presence with what was known before; it
// reports false when neither the status nor the rooms changed.
func presenceChange(prev wire.Presence, had bool, pr wire.Presence) (PresenceChange, bool) {
	var was []string
	if had && prev.Status == wire.Online {
		was = prev.Rooms
	}
	var now []string
	if pr.Status == wire.Online {
		now = pr.Rooms
	}
	ch := PresenceChange{Presence: pr}
	for _, r := range now {
		if !slices.Contains(was, r) {
			ch.Joined = append(ch.Joined, r)
		}
	}
	for _, r := range was {
		if !slices.Contains(now, r) {
			ch.Left = append(ch.Left, r)
		}
	}
	return ch, !had || prev.Status != pr.Status || len(ch.Joined) > 0 || len(ch.Left) > 0
}

// Who lists the users whose retained presence says they are online in room
// (any room when room is ""), sorted.
func (s *Session) Who(room string) []string { return s.pres.book.online(room) }

func (s *Session) presencePayload(status string, rooms []string) ([]byte, error) {
	p := wire.Presence{V: wire.Version, User: s.me, Status: status, Rooms: rooms, AtNS: time.Now().UnixNano(), Device: s.ident.clientID}
	return jsonMarshal(p)
}

// publishPresence publishes the retained presence and waits for its PUBACK
// a bounded time. Once the node has said offline it says online no more.
func (s *Session) publishPresence(status string) {
	var rooms []string
	if status == wire.Online {
		rooms = s.Rooms()
	}
	payload, err := s.presencePayload(status, rooms)
	if err != nil {
		s.entry(nodelog.EventPresence).WithError(err).Error("encode presence")
		return
	}
	// Publish only queues the packet (paho writes in queue order), so the
	// lock orders the two publishes without waiting on the network.
	s.pres.mu.Lock()
	if status == wire.Online && s.pres.leaving {
		s.pres.mu.Unlock()
		return
	}
	s.pres.leaving = status == wire.Offline
	tok := s.client.Publish(wire.PresenceTopic(s.me), 1, true, payload)
	s.pres.mu.Unlock()
	e := s.entry(nodelog.EventPresence).WithField(nodelog.FieldUser, s.me).WithField(nodelog.FieldStatus, status)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			e.WithError(err).Warn("presence not published")
			return
		}
		e.Info("presence")
	case <-time.After(s.cfg.ConnectTimeout):
		e.WithField(nodelog.FieldError, "no PUBACK within "+s.cfg.ConnectTimeout.String()).Warn("presence not acknowledged")
	}
}

// onlineAgain says online again after another device of this user (or its
// Will) said the user is offline while this device is still connected: on
// a broker that keeps presence per user this does not happen, on any other
// (Mosquitto) the last device to speak wins, so the user shows online again
// after a moment. It runs on its own goroutine (it waits for the PUBACK).
func (s *Session) onlineAgain() {
	if !s.Connected() || !s.pres.reasserting.CompareAndSwap(false, true) {
		return // a reconnect says online anyway
	}
	defer s.pres.reasserting.Store(false)
	s.entry(nodelog.EventPresence).WithField(nodelog.FieldUser, s.me).Info("another device said offline; saying online again")
	s.publishPresence(wire.Online)
}
