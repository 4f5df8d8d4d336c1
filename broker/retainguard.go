package broker

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// retainGuard serialises two things Mochi v2.7.9 does concurrently without
// a common lock: storing a retained message, which writes the path of its
// topic's node under that node's lock, and a wildcard SUBSCRIBE's retained
// scan, which reads that path under no lock: presence (retained) and a
// subscription to everyone's presence meet at every reconnect, a data race
// on a string, which could tear.
//
// The guard is never held across a network write, so a client that stops
// reading cannot hold back the others. A wildcard SUBSCRIBE holds it shared
// from its SUBACK (Mochi writes it before its scan) until
// OnPacketProcessed; a retained PUBLISH or will holds it exclusive until
// the message is stored (this hook is added last, after every other
// check). Mochi handles a client's packets one at a time, so a client holds
// at most one guard; under it Mochi only queues to other clients
// (non-blocking), so no wait cycle forms.
type retainGuard struct {
	mqtt.HookBase

	// tree guards Mochi's retained-message paths as above. It is taken
	// before any of Mochi's locks and after none of ours.
	tree sync.RWMutex

	mu      sync.Mutex // guards held; taken after tree, never held while waiting
	held    map[*mqtt.Client]guardMode
	holders atomic.Int64 // len(held): releasing after a packet that took nothing costs one load
}

// guardMode is how a client holds the guard; pending marks a wildcard
// SUBSCRIBE whose SUBACK is not written yet.
type guardMode int

const (
	guardNone guardMode = iota
	guardPending
	guardShared
	guardExclusive
)

func (m guardMode) String() string {
	return enumName(int(m), "guardMode", "none", "pending", "shared", "exclusive")
}

func newRetainGuard() *retainGuard { return &retainGuard{held: map[*mqtt.Client]guardMode{}} }

// ID names the hook.
func (g *retainGuard) ID() string { return "distchat-retain-guard" }

// Provides lists the events the guard takes and releases on.
func (g *retainGuard) Provides(b byte) bool {
	return slices.Contains([]byte{mqtt.OnSubscribe, mqtt.OnPacketSent, mqtt.OnPublish, mqtt.OnRetainMessage,
		mqtt.OnPacketProcessed, mqtt.OnWill, mqtt.OnWillSent}, b)
}

// OnSubscribe marks a SUBSCRIBE with a wildcard filter: only those scan the
// topic tree for retained messages.
func (g *retainGuard) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if cl == nil || cl.Net.Inline {
		return pk
	}
	if slices.ContainsFunc(pk.Filters, func(f packets.Subscription) bool { return strings.ContainsAny(f.Filter, "+#") }) {
		g.mu.Lock()
		if g.held[cl] == guardNone {
			g.held[cl] = guardPending
			g.holders.Add(1)
		}
		g.mu.Unlock()
	}
	return pk
}

// OnPacketSent takes the guard shared for a marked SUBSCRIBE once its
// SUBACK is written: Mochi scans for retained messages right after.
func (g *retainGuard) OnPacketSent(cl *mqtt.Client, pk packets.Packet, _ []byte) {
	if pk.FixedHeader.Type != packets.Suback || g.holders.Load() == 0 {
		return
	}
	g.mu.Lock()
	pending := g.held[cl] == guardPending
	g.mu.Unlock()
	if pending {
		g.take(cl, guardShared)
	}
}

// OnPublish takes the guard exclusively for a retained PUBLISH.
func (g *retainGuard) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Retain {
		g.take(cl, guardExclusive)
	}
	return pk, nil
}

// OnRetainMessage releases the guard once Mochi has stored the message,
// before it writes the PUBACK.
func (g *retainGuard) OnRetainMessage(cl *mqtt.Client, _ packets.Packet, _ int64) { g.release(cl) }

// OnPacketProcessed releases what the packet took, refused or not.
func (g *retainGuard) OnPacketProcessed(cl *mqtt.Client, _ packets.Packet, _ error) { g.release(cl) }

// OnWill takes the guard exclusively for a retained will sent now (a
// delayed one, MQTT 5, is stored later without it).
func (g *retainGuard) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if will.Retain && will.WillDelayInterval == 0 {
		g.take(cl, guardExclusive)
	}
	return will, nil
}

// OnWillSent releases what OnWill took, if the will was not stored.
func (g *retainGuard) OnWillSent(cl *mqtt.Client, _ packets.Packet) { g.release(cl) }

// publishRetained runs the broker's own retained publish under the guard.
func (g *retainGuard) publishRetained(publish func() error) error {
	g.tree.Lock()
	defer g.tree.Unlock()
	return publish()
}

// take acquires the guard for cl in mode, unless cl is the inline client
// (publishRetained guards it) or holds it already.
func (g *retainGuard) take(cl *mqtt.Client, mode guardMode) {
	if cl == nil || cl.Net.Inline {
		return
	}
	g.mu.Lock()
	was := g.held[cl]
	g.mu.Unlock()
	if was == guardShared || was == guardExclusive {
		return
	}
	if mode == guardShared {
		g.tree.RLock()
	} else {
		g.tree.Lock()
	}
	g.mu.Lock()
	g.held[cl] = mode
	if was == guardNone {
		g.holders.Add(1)
	}
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
