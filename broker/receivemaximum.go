package broker

import (
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/distchat/distchat/broker/internal/mqttscan"
)

// receiveMaximumHook turns Mochi's own send quota for an MQTT 5 client's
// Receive Maximum ([MQTT-3.3.4-9]) off for every client: in Mochi v2.7.9 a
// message over the quota is sent one per packet the client sends, in
// random order within a second, and deleted from the in-flight set once
// written, so its PUBACK restores no quota, deliveries stop, and it is
// never resent. clientConn's receiveFlow does the flow control instead: it
// holds QoS 1 and 2 PUBLISHes back, in order, while the maximum is
// unacknowledged; a held message stays in Mochi's in-flight set. QoS 0 and
// other packets pass ([MQTT-3.3.4-10]). MQTT 3.1.1 clients, MQTT 5 clients
// without a Receive Maximum and WebSocket clients get no flow control.
type receiveMaximumHook struct{ mqtt.HookBase }

func (h *receiveMaximumHook) ID() string { return "distchat-receive-maximum" }

func (h *receiveMaximumHook) Provides(b byte) bool {
	return b == mqtt.OnConnect || b == mqtt.OnSessionEstablished
}

// OnConnect runs after Mochi set the quota from the CONNECT.
func (h *receiveMaximumHook) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	cl.State.Inflight.ResetSendQuota(0)
	return nil
}

// OnSessionEstablished runs after Mochi set it again for a resumed session.
func (h *receiveMaximumHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	cl.State.Inflight.ResetSendQuota(0)
}

// Flow states of a connection.
const (
	flowConnecting  int32 = iota // CONNECT not read yet
	flowCounting                 // MQTT 5 with a Receive Maximum
	flowPassthrough              // nothing to do
)

// maxConnectScan bounds the CONNECT read for its Receive Maximum.
const maxConnectScan = 64 << 10

// receiveFlow is a clientConn's Receive Maximum flow control; its atomic
// state costs a connection with nothing to count one load per Read and Write.
type receiveFlow struct {
	state atomic.Int32
	in    mqttscan.Scanner // what the client sends; Read's goroutine only

	// mu guards max, out and held, and is held across the write of what it
	// lets through, so packets leave in order. It is taken inside Mochi's
	// client lock and before acks.
	mu   sync.Mutex
	max  int
	out  map[uint16]struct{} // PUBLISHes written and not yet acknowledged
	held [][]byte            // whole PUBLISH packets waiting, in order
}

// writeCounted writes p (whole packets) but the PUBLISHes over the Receive
// Maximum, and reports p written.
func (c *clientConn) writeCounted(p []byte) (int, error) {
	c.flow.mu.Lock()
	defer c.flow.mu.Unlock()
	send, held := mqttscan.Without(p, c.flow.hold)
	if !held {
		return c.writeAcks(p)
	}
	if len(send) > 0 {
		if _, err := c.writeAcks(send); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// hold counts a QoS 1 or 2 PUBLISH and reports whether it waits (copied to
// held); a resent one, whose id is out already, does not. f.mu is held.
func (f *receiveFlow) hold(pkt []byte) bool {
	id, ok := mqttscan.PublishID(pkt)
	if !ok {
		return false
	}
	if _, resent := f.out[id]; resent {
		return false
	}
	if len(f.held) > 0 || len(f.out) >= f.max {
		f.held = append(f.held, append([]byte(nil), pkt...))
		return true
	}
	f.out[id] = struct{}{}
	return false
}

// keepBody is how much of a client packet's body incoming needs.
func keepBody(typ byte) int {
	switch typ {
	case packets.Connect:
		return maxConnectScan
	case packets.Puback, packets.Pubrec, packets.Pubcomp:
		return 3 // packet identifier and reason code
	}
	return 0
}

// incoming handles one packet from the client: body is its start (up to
// keepBody) of length.
func (c *clientConn) incoming(first byte, body []byte, length int) {
	typ := first >> 4
	switch {
	case typ == packets.Connect && c.flow.state.Load() == flowConnecting:
		c.flow.state.Store(c.flow.connect(first, body, length))
	case len(body) < 2:
	case typ == packets.Puback || typ == packets.Pubcomp,
		typ == packets.Pubrec && len(body) > 2 && body[2] >= 0x80: // a refusing PUBREC ends the flow
		c.release(uint16(body[0])<<8 | uint16(body[1]))
	}
}

// connect decides the flow's state from the client's CONNECT.
func (f *receiveFlow) connect(first byte, body []byte, length int) int32 {
	if len(body) < length {
		return flowPassthrough // over maxConnectScan
	}
	pk := packets.Packet{}
	if pk.FixedHeader.Decode(first) != nil || pk.ConnectDecode(body) != nil ||
		pk.ProtocolVersion != 5 || pk.Properties.ReceiveMaximum == 0 {
		return flowPassthrough
	}
	f.mu.Lock()
	f.max = int(pk.Properties.ReceiveMaximum)
	f.out = make(map[uint16]struct{}, f.max)
	f.mu.Unlock()
	return flowCounting
}

// release ends the flow of PUBLISH id and writes the held PUBLISHes that
// now fit; a failed write ends the connection, which Mochi sees next.
func (c *clientConn) release(id uint16) {
	f := &c.flow
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.out[id]; !ok {
		return
	}
	delete(f.out, id)
	var batch []byte
	for len(f.held) > 0 && len(f.out) < f.max {
		pkt := f.held[0]
		f.held[0] = nil
		f.held = f.held[1:]
		next, _ := mqttscan.PublishID(pkt)
		f.out[next] = struct{}{}
		batch = append(batch, pkt...)
	}
	if len(batch) > 0 {
		_, _ = c.writeAcks(batch)
	}
}
