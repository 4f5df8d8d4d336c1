package broker

import (
	"bytes"
	"strings"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// retainGuard serialises two things Mochi v2.7.9 does concurrently without
// a common lock: storing a retained message, which writes the path of the
// topic's node in its topic tree under that node's lock, and the scan for
// retained messages that a SUBSCRIBE with a wildcard runs, which reads that
// path under no lock. Between a node's presence announcement (retained)
// and another node's subscription to everyone's presence (a wildcard),
// both at every reconnect, that is a data race on a string, which the race
// detector reports and which could tear.
//
// A wildcard SUBSCRIBE holds the guard shared, from its OnSubscribe to its
// OnPacketProcessed; a retained PUBLISH holds it exclusively, from its
// OnPublish (this hook is added last, so the room log and every other
// check have run) to its OnPacketProcessed; a retained will from OnWill to
// OnWillSent. Mochi handles one client's packets one at a time, so a
// client holds at most one guard; the broker's own (inline) client
// publishes through publishRetained. What runs under the guard writes
// only to the client's own connection and to other clients' queues; none
// of it waits for another client's packet handling, so no cycle of waits
// can form.
type retainGuard struct {
	mqtt.HookBase

	// tree guards Mochi's retained-message paths as above. It is taken
	// before any of Mochi's locks and after none of ours.
	tree sync.RWMutex

	mu   sync.Mutex // guards held; taken after tree, never held while waiting
	held map[*mqtt.Client]guardMode
	// holders counts the entries of held, so that releasing after the
	// packets that took nothing (nearly all) costs one atomic load.
	holders atomic.Int64
}

// guardMode is how a client holds the guard.
type guardMode int

const (
	guardNone guardMode = iota
	guardShared
	guardExclusive
)

func (m guardMode) String() string {
	switch m {
	case guardShared:
		return "shared"
	case guardExclusive:
		return "exclusive"
	default:
		return "none"
	}
}

func newRetainGuard() *retainGuard { return &retainGuard{held: map[*mqtt.Client]guardMode{}} }

// ID names the hook.
func (g *retainGuard) ID() string { return "distchat-retain-guard" }

// Provides lists the events the guard takes and releases on.
func (g *retainGuard) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnSubscribe, mqtt.OnPublish, mqtt.OnPacketProcessed, mqtt.OnWill, mqtt.OnWillSent}, []byte{b})
}

// OnSubscribe takes the guard shared for a SUBSCRIBE with a wildcard
// filter: only those scan the topic tree for retained messages.
func (g *retainGuard) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	for _, f := range pk.Filters {
		if strings.ContainsAny(f.Filter, "+#") {
			g.take(cl, guardShared)
			break
		}
	}
	return pk
}

// OnPublish takes the guard exclusively for a retained PUBLISH.
func (g *retainGuard) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain {
		g.take(cl, guardExclusive)
	}
	return pk, nil
}

// OnPacketProcessed releases what the packet took.
func (g *retainGuard) OnPacketProcessed(cl *mqtt.Client, _ packets.Packet, _ error) { g.release(cl) }

// OnWill takes the guard exclusively for a retained will sent now (a
// delayed one, MQTT 5, is stored later without it).
func (g *retainGuard) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if will.Retain && will.WillDelayInterval == 0 {
		g.take(cl, guardExclusive)
	}
	return will, nil
}

// OnWillSent releases what OnWill took.
func (g *retainGuard) OnWillSent(cl *mqtt.Client, _ packets.Packet) { g.release(cl) }

// publishRetained runs the broker's own retained publish under the guard.
func (g *retainGuard) publishRetained(publish func() error) error {
	g.tree.Lock()
	defer g.tree.Unlock()
	return publish()
}

// take acquires the guard for cl in mode, unless cl is the broker's own
// client (publishRetained guards it) or already holds it.
func (g *retainGuard) take(cl *mqtt.Client, mode guardMode) {
	if cl == nil || cl.Net.Inline {
		return
	}
	g.mu.Lock()
	already := g.held[cl] != guardNone
	g.mu.Unlock()
	if already {
		return
	}
	if mode == guardShared {
		g.tree.RLock()
	} else {
		g.tree.Lock()
	}
	g.mu.Lock()
	g.held[cl] = mode
	g.holders.Add(1)
	g.mu.Unlock()
}

// release gives back what cl holds, if anything.
func (g *retainGuard) release(cl *mqtt.Client) {
	if g.holders.Load() == 0 {
		return // cl took nothing: its own take would show here
	}
	g.mu.Lock()
	mode, ok := g.held[cl]
	if ok {
		delete(g.held, cl)
		g.holders.Add(-1)
	}
	g.mu.Unlock()
	switch mode {
	case guardShared:
		g.tree.RUnlock()
	case guardExclusive:
		g.tree.Unlock()
	}
}
