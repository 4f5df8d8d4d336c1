package broker

import (
	"net"
	"sync"
	"sync/atomic"

	"github.com/distchat/distchat/broker/roomlog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/distchat/distchat/broker/internal/mqttscan"
)

// An MQTT 5 client's Receive Maximum is how many QoS 1 and 2 PUBLISHes it
// takes unacknowledged; the broker must not send more ([MQTT-3.3.4-9]).
// Mochi v2.7.9 keeps a send quota for it, but when the quota runs out it
// parks the message in the client's in-flight set and sends one parked
// message per packet the client sends afterwards (Server.processPacket), in
// a random order within the same second (Inflight.NextImmediate sorts by
// creation time in whole seconds), and deletes it from the in-flight set
// once written: its PUBACK then restores no quota, the quota shrinks with
// each parked message until nothing more is delivered, and a parked message
// is never resent on reconnect.
//
// So the broker does the flow control at the connection instead.
// receiveMaximumHook turns Mochi's send quota off (a maximum of 0, which
// Mochi reads as "no flow control"), so Mochi writes every delivery at once;
// receiveMaximumConn reads the client's Receive Maximum from its CONNECT,
// counts the QoS 1 and 2 PUBLISHes written and the PUBACKs, PUBCOMPs and
// refusing PUBRECs read, and holds a PUBLISH back, in order, while the
// client has its Receive Maximum unacknowledged. Mochi's in-flight set
// still has a held message, so it is resent on the next connection if this
// one ends first, and the number held is bounded by limits.max_inflight and
// limits.max_inflight_bytes as any in-flight message is. QoS 0 PUBLISHes and
// other packets are not held ([MQTT-3.3.4-10]; ordering is per QoS). MQTT
// 3.1.1 clients, and MQTT 5 clients without a Receive Maximum, are passed
// through untouched after their CONNECT. WebSocket connections are not
// wrapped (as for clientconn.go), so they get no flow control.

// receiveMaximumHook turns Mochi's own send quota off for every client.
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

// receiveMaximumListener gives every accepted connection a receiveMaximumConn.
type receiveMaximumListener struct{ net.Listener }

func (l receiveMaximumListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &receiveMaximumConn{Conn: c}, nil
}

// Flow states of a connection.
const (
	flowConnecting  int32 = iota // CONNECT not read yet
	flowCounting                 // MQTT 5 with a Receive Maximum
	flowPassthrough              // nothing to do
)

// maxConnectScan bounds the CONNECT read for its Receive Maximum; a larger
// one (Mochi refuses those over max_packet_size anyway) is passed through.
const maxConnectScan = 64 << 10

// receiveMaximumConn holds QoS 1 and 2 PUBLISHes beyond the client's
// Receive Maximum until acknowledgements free room.
type receiveMaximumConn struct {
	net.Conn
	state atomic.Int32
	in    mqttscan.Scanner // what the client sends; Read's goroutine only

	// mu guards max, out and held, and serializes writes to Conn so that
	// held packets and later ones leave in order. Mochi's Write takes it
	// inside Mochi's client lock, Read on its own; it is held across a
	// socket write, which limits.write_timeout bounds.
	mu   sync.Mutex
	max  int
	out  map[uint16]struct{} // PUBLISHes written and not yet acknowledged
	held [][]byte            // whole PUBLISH packets waiting, in order
}

// Write counts the QoS 1 and 2 PUBLISHes in p (whole packets: Mochi writes
// one packet, or a buffer of whole packets, per call) and holds those over
// the client's Receive Maximum; the rest go out in one write.
func (c *receiveMaximumConn) Write(p []byte) (int, error) {
	if c.state.Load() != flowCounting {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return writeWithout(c.Conn, p, c.hold)
}

// hold counts pkt if it is a QoS 1 or 2 PUBLISH and reports whether it
// waits (then it is copied to held). c.mu is held.
func (c *receiveMaximumConn) hold(pkt []byte) bool {
	id, ok := mqttscan.PublishID(pkt)
	if !ok {
		return false
	}
	if _, resent := c.out[id]; resent {
		return false
	}
	if len(c.held) > 0 || len(c.out) >= c.max {
		c.held = append(c.held, append([]byte(nil), pkt...))
		return true
	}
	c.out[id] = struct{}{}
	return false
}

// Read reads what the client sends and looks at its CONNECT and its
// acknowledgements; an acknowledgement that frees room writes the held
// PUBLISHes that now fit.
func (c *receiveMaximumConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && c.state.Load() != flowPassthrough {
		c.in.Feed(p[:n], keepBody, c.incoming)
	}
	return n, err
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
// keepBody), length its whole body length.
func (c *receiveMaximumConn) incoming(first byte, body []byte, length int) {
	typ := first >> 4
	switch {
	case typ == packets.Connect && c.state.Load() == flowConnecting:
		c.state.Store(c.connectFlow(first, body, length))
	case len(body) < 2:
	case typ == packets.Puback || typ == packets.Pubcomp,
		typ == packets.Pubrec && len(body) > 2 && body[2] >= 0x80: // a refusing PUBREC ends the flow
		c.release(uint16(body[0])<<8 | uint16(body[1]))
	}
}

// connectFlow decides the connection's state from its CONNECT.
func (c *receiveMaximumConn) connectFlow(first byte, body []byte, length int) int32 {
	if len(body) < length {
		return flowPassthrough // over maxConnectScan
	}
	pk := packets.Packet{}
	if pk.FixedHeader.Decode(first) != nil || pk.ConnectDecode(body) != nil ||
		pk.ProtocolVersion != 5 || pk.Properties.ReceiveMaximum == 0 {
		return flowPassthrough
	}
	c.mu.Lock()
	c.max = int(pk.Properties.ReceiveMaximum)
	c.out = make(map[uint16]struct{}, c.max)
	c.mu.Unlock()
	return flowCounting
}

// release ends the flow of PUBLISH id and writes the held PUBLISHes that
// now fit. A failed write ends the connection: Mochi's next read or write
// sees it, and the held messages are still in Mochi's in-flight set.
func (c *receiveMaximumConn) release(id uint16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.out[id]; !ok {
		return
	}
	delete(c.out, id)
	var batch []byte
	for len(c.held) > 0 && len(c.out) < c.max {
		pkt := c.held[0]
		c.held[0] = nil
		c.held = c.held[1:]
		next, _ := mqttscan.PublishID(pkt)
		c.out[next] = struct{}{}
		batch = append(batch, pkt...)
	}
	if len(batch) > 0 {
		_, _ = c.Conn.Write(batch)
	}
}

// writeWithout writes p to conn without the whole packets hold keeps back
// (Mochi writes one packet, or a buffer of whole packets, per call), and
// reports p as written.
func writeWithout(conn net.Conn, p []byte, hold func(pkt []byte) bool) (int, error) {
	send, held := mqttscan.Without(p, hold)
	if !held {
		return conn.Write(p)
	}
	if len(send) > 0 {
		if _, err := conn.Write(send); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// FlushAcks passes roomlog.AckFlusher through to the connection below.
func (c *receiveMaximumConn) FlushAcks() error {
	if f, ok := c.Conn.(roomlog.AckFlusher); ok {
		return f.FlushAcks()
	}
	return nil
}
