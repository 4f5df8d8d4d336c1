package cluster

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
)

// Sessions are not replicated: a client that moves to another broker
// starts a session there, and the one it left behind keeps queueing its
// subscriptions' messages (memory, quota drops, a stale backlog holding up
// live ones when it returns). So each broker announces every session a
// client establishes, and the others drop that client's old session when
// it is offline; a chat node catches up from the room log on connect.

// sessionMovedSubject carries "<node> <client id>" per session established.
const sessionMovedSubject = "distchat.session.moved"

// SessionMoves tells the other brokers about the sessions clients
// establish here, and this broker about theirs.
type SessionMoves struct {
	node string
	nc   *nats.Conn
	sub  *nats.Subscription

	// mu guards stopped; it is held while moved runs, so Stop returns
	// only after the last call. Taken after no other lock of this package.
	mu      sync.Mutex
	stopped bool
}

// FollowSessionMoves calls moved, on NATS's delivery goroutine, with the
// client id of every session a client establishes on another broker.
func (n *Node) FollowSessionMoves(moved func(clientID string)) (*SessionMoves, error) {
	m := &SessionMoves{node: n.name, nc: n.nc}
	sub, err := n.nc.Subscribe(sessionMovedSubject, func(msg *nats.Msg) {
		node, id, ok := bytes.Cut(msg.Data, []byte(" "))
		if !ok || string(node) == m.node || len(id) == 0 {
			return
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if !m.stopped {
			moved(string(id))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: follow session moves: %w", err)
	}
	m.sub = sub
	return m, nil
}

// Announce tells the other brokers that clientID established a session
// here, without waiting: a lost one leaves a stale session to expire.
func (m *SessionMoves) Announce(clientID string) {
	_ = m.nc.Publish(sessionMovedSubject, []byte(m.node+" "+clientID))
}

// Stop ends following; it returns once no call of moved runs or will.
func (m *SessionMoves) Stop() {
	_ = m.sub.Unsubscribe()
	m.mu.Lock()
	m.stopped = true
	m.mu.Unlock()
}
