package broker

import (
	"slices"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// inflightBytes bounds the bytes of unacknowledged QoS 1 and 2 deliveries,
// per client (limits.max_inflight_bytes) and over all clients
// (limits.max_inflight_bytes_total). Mochi bounds them by count only, and
// 8192 × 256 KiB is 2 GiB for one client that does not acknowledge. The
// auth hook asks admit before each delivery; one over a bound is dropped
// (inflight_bytes), and the node repairs it from the room log.
type inflightBytes struct {
	mqtt.HookBase
	perClient int64        // 0: no per-client bound
	total     int64        // 0: no global bound
	sum       atomic.Int64 // the bytes of every client's unacknowledged deliveries, for /stats

	// mu guards clients; taken alone, never across I/O.
	mu      sync.Mutex
	clients map[string]*clientInflight
}

// clientInflight is one client's unacknowledged deliveries by packet id.
type clientInflight struct {
	bytes int64
	sizes map[uint16]int64
}

func newInflightBytes(perClient, total int64) *inflightBytes {
	return &inflightBytes{perClient: perClient, total: total, clients: make(map[string]*clientInflight)}
}

func (h *inflightBytes) ID() string { return "distchat-inflight-bytes" }

func (h *inflightBytes) Provides(b byte) bool {
	return slices.Contains([]byte{mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped,
		mqtt.OnDisconnect, mqtt.OnClientExpired}, b)
}

// OnQosPublish records a delivery Mochi now keeps until it is acknowledged;
// a resend of the same packet id replaces the earlier size.
func (h *inflightBytes) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	n := int64(len(pk.Payload) + len(pk.TopicName)) // what Mochi keeps for it
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.clients[cl.ID]
	if c == nil {
		c = &clientInflight{sizes: make(map[uint16]int64)}
		h.clients[cl.ID] = c
	}
	old := c.sizes[pk.PacketID]
	c.sizes[pk.PacketID] = n
	c.bytes += n - old
	h.sum.Add(n - old)
}

// OnQosComplete releases an acknowledged delivery.
func (h *inflightBytes) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	h.release(cl.ID, pk.PacketID)
}

// OnQosDropped releases a delivery Mochi gave up (expired, refused).
func (h *inflightBytes) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	h.release(cl.ID, pk.PacketID)
}

// OnDisconnect forgets a client whose session ends with the connection.
func (h *inflightBytes) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire {
		h.forget(cl.ID)
	}
}

// OnClientExpired forgets a persistent session that expired.
func (h *inflightBytes) OnClientExpired(cl *mqtt.Client) { h.forget(cl.ID) }

func (h *inflightBytes) release(client string, id uint16) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.clients[client]
	if c == nil {
		return
	}
	if n, ok := c.sizes[id]; ok {
		delete(c.sizes, id)
		c.bytes -= n
		h.sum.Add(-n)
	}
	if len(c.sizes) == 0 {
		delete(h.clients, client)
	}
}

func (h *inflightBytes) forget(client string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.clients[client]; c != nil {
		h.sum.Add(-c.bytes)
		delete(h.clients, client)
	}
}

// admit reports whether client and all clients hold less than their bounds.
// Mochi asks before it knows the delivery's size, so a client may overshoot
// its bound by one message; one holding nothing is always admitted.
func (h *inflightBytes) admit(client string) bool {
	h.mu.Lock()
	held := int64(0)
	if c := h.clients[client]; c != nil {
		held = c.bytes
	}
	h.mu.Unlock()
	if held == 0 {
		return true
	}
	if h.perClient > 0 && held >= h.perClient {
		return false
	}
	return h.total <= 0 || h.sum.Load() < h.total
}
