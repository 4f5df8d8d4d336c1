package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	pebblestore "github.com/mochi-mqtt/server/v2/hooks/storage/pebble"
	"github.com/mochi-mqtt/server/v2/packets"
)

// guardedPebble is Mochi's Pebble storage hook with its writes fenced
// against Stop. Mochi v2.7.9's hook closes the database before it marks
// it closed, and nothing orders that against the events Mochi's Close
// still delivers (in-flight messages dropped, sessions written on
// disconnect): a write between the two panics in Pebble and turns a clean
// shutdown into a crash. Here each write holds a read lock and is skipped
// once stopped; Stop takes the write lock. What is skipped is a stopping
// broker's state, which a restart recovers from what was written before.
// sessionStore fences its own in-flight writes.
type guardedPebble struct {
	*pebblestore.Hook

	// mu guards stopped and orders every write before Stop; writes hold it
	// for reading. It is taken before sessionStore.mu.
	mu      sync.RWMutex
	stopped bool
}

// write runs fn on the store unless it is stopped.
func (g *guardedPebble) write(fn func()) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.stopped {
		fn()
	}
}

// Stop closes the store once the writes under way are done.
func (g *guardedPebble) Stop() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return nil
	}
	g.stopped = true
	return g.Hook.Stop()
}

// OnSessionEstablished stores the client's session.
func (g *guardedPebble) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	g.write(func() { g.Hook.OnSessionEstablished(cl, pk) })
}

// OnWillSent stores the client after its will is sent.
func (g *guardedPebble) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	g.write(func() { g.Hook.OnWillSent(cl, pk) })
}

// OnDisconnect stores or removes the session of a client that left.
func (g *guardedPebble) OnDisconnect(cl *mqtt.Client, err error, expire bool) {
	g.write(func() { g.Hook.OnDisconnect(cl, err, expire) })
}

// OnSubscribed stores new subscriptions.
func (g *guardedPebble) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	g.write(func() { g.Hook.OnSubscribed(cl, pk, reasonCodes) })
}

// OnUnsubscribed removes subscriptions.
func (g *guardedPebble) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	g.write(func() { g.Hook.OnUnsubscribed(cl, pk) })
}

// OnRetainMessage stores or removes a retained message.
func (g *guardedPebble) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, r int64) {
	g.write(func() { g.Hook.OnRetainMessage(cl, pk, r) })
}

// OnRetainedExpired removes an expired retained message.
func (g *guardedPebble) OnRetainedExpired(filter string) {
	g.write(func() { g.Hook.OnRetainedExpired(filter) })
}

// OnClientExpired removes an expired session.
func (g *guardedPebble) OnClientExpired(cl *mqtt.Client) {
	g.write(func() { g.Hook.OnClientExpired(cl) })
}
