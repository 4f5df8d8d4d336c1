package roomlog

import (
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// routing tracks chat publishes from just before their append until Mochi
// has routed them (OnPublished) or they end unrouted, for Routed
// (broker/sessionmarks.go). Mochi handles a client's packets one at a time.
type routing struct {
	mu   sync.Mutex // guards busy; taken after the store's lock is released, never with another
	busy map[*mqtt.Client]inProgress
	n    atomic.Int64 // len(busy): ending a publish that began nothing costs a load
}

// inProgress is a publish's conversation and its last seq before the append.
type inProgress struct {
	conv  string
	floor uint64
}

// begin marks cl's publish to conv, whose last seq is floor, in progress.
func (r *routing) begin(cl *mqtt.Client, conv string, floor uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.busy[cl]; !ok {
		r.n.Add(1)
	}
	made(&r.busy)[cl] = inProgress{conv, floor}
}

// end marks cl's publish, if any, as handled.
func (r *routing) end(cl *mqtt.Client) {
	if r.n.Load() == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.busy[cl]; ok {
		delete(r.busy, cl)
		r.n.Add(-1)
	}
}

// floors returns the lowest floor of each conversation in progress.
func (r *routing) floors() map[string]uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]uint64, len(r.busy))
	for _, p := range r.busy {
		if f, ok := out[p.conv]; !ok || p.floor < f {
			out[p.conv] = p.floor
		}
	}
	return out
}

// OnPublished ends a publish's routing, once it is in every subscriber's queue.
func (h *Hook) OnPublished(cl *mqtt.Client, _ packets.Packet) { h.routes.end(cl) }

// Routed returns, per conversation, a sequence number up to which every
// record is in every subscriber's queue on this broker (for records other
// brokers appended: the log's last).
func (h *Hook) Routed() map[string]uint64 {
	convs := h.store.Conversations()
	out := make(map[string]uint64, len(convs))
	for _, c := range convs {
		out[c] = h.store.Last(c)
	}
	// Read after every Last: a record at or below a Last read above is
	// either done by now or its publish shows here with a lower floor.
	for c, f := range h.routes.floors() {
		if last, ok := out[c]; !ok || f < last {
			out[c] = f
		}
	}
	return out
}

// Records returns up to limit records of conv after seq after, in order.
func (h *Hook) Records(conv string, after uint64, limit int) ([]Record, error) {
	return h.store.Read(conv, after, limit)
}
