package session

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// presenceState is the session's presence job. Every user publishes a
// retained presence (online with its rooms, or offline, also as its Last
// Will); the pipeline reads everyone's into book, which Who answers from.
type presenceState struct {
	// mu guards leaving and orders presence publishes against quitting:
	// once the node says offline, no "online" follows. Taken after
	// out.sendMu and before Session.mu.
	mu          sync.Mutex
	leaving     bool
	reasserting atomic.Bool // an "online again" publish is under way
	book        sync.Map    // user → wire.Presence: everyone's last presence
}

// recordPresence stores pr and returns what was known of its user before.
func (s *Session) recordPresence(pr wire.Presence) (wire.Presence, bool) {
	prev, had := s.pres.book.Swap(pr.User, pr)
	was, _ := prev.(wire.Presence)
	return was, had
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

// presenceChange compares a user's presence with the one known before, and
// reports whether the status or the rooms changed.
func presenceChange(prev wire.Presence, had bool, pr wire.Presence) (PresenceChange, bool) {
	var was, now []string
	if had && prev.Status == wire.Online {
		was = prev.Rooms
	}
	if pr.Status == wire.Online {
		now = pr.Rooms
	}
	ch := PresenceChange{Presence: pr, Joined: without(now, was), Left: without(was, now)}
	return ch, !had || prev.Status != pr.Status || ch.Joined != nil || ch.Left != nil
}

// without returns the elements of a not in b, in order (nil if none).
func without(a, b []string) (out []string) {
	for _, r := range a {
		if !slices.Contains(b, r) {
			out = append(out, r)
		}
	}
	return out
}

// Who lists the users whose retained presence says they are online in room
// (any room when room is ""), sorted.
func (s *Session) Who(room string) []string {
	var out []string
	s.pres.book.Range(func(u, p any) bool {
		if pr := p.(wire.Presence); pr.Status == wire.Online && (room == "" || slices.Contains(pr.Rooms, room)) {
			out = append(out, u.(string))
		}
		return true
	})
	slices.Sort(out)
	return out
}

func (s *Session) presencePayload(status string, rooms []string) ([]byte, error) {
	return json.Marshal(wire.Presence{V: wire.Version, User: s.me, Status: status, Rooms: rooms, AtNS: time.Now().UnixNano(), Device: s.clientID})
}

// publishPresence publishes the retained presence and waits a bounded time
// for its PUBACK. Once the node has said offline it says online no more.
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
	s.pres.mu.Lock() // Publish only queues the packet: the lock waits on no network
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
// Will) said offline while this one is connected: on a broker that does not
// keep presence per user (Mosquitto) the last device to speak wins.
func (s *Session) onlineAgain() {
	if !s.Connected() || !s.pres.reasserting.CompareAndSwap(false, true) {
		return // a reconnect says online anyway
	}
	defer s.pres.reasserting.Store(false)
	s.entry(nodelog.EventPresence).WithField(nodelog.FieldUser, s.me).Info("another device said offline; saying online again")
	s.publishPresence(wire.Online)
}
