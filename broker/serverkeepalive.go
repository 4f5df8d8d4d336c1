package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// serverKeepAlive imposes limits.max_keep_alive on MQTT 5 clients through
// the CONNACK's Server Keep Alive ([MQTT-3.2.2-21]), so a connection that
// died without a FIN does not hold its session and Will for ever. Mochi
// v2.7.9 has no maximum of its own and sends a Server Keep Alive only when
// a hook sets one. MQTT 3.1.1 cannot tell a client, so those are not bound.
type serverKeepAlive struct {
	mqtt.HookBase
	max uint16 // limits.max_keep_alive in seconds; > 0
}

func (h *serverKeepAlive) ID() string { return "distchat-server-keep-alive" }

func (h *serverKeepAlive) Provides(b byte) bool { return b == mqtt.OnConnect }

// OnConnect runs before Mochi sets the connection's deadline from
// cl.State.Keepalive and before it writes the CONNACK.
func (h *serverKeepAlive) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	if cl.Properties.ProtocolVersion == 5 && (cl.State.Keepalive == 0 || cl.State.Keepalive > h.max) {
		cl.State.Keepalive = h.max
		cl.State.ServerKeepalive = true
	}
	return nil
}
