package broker

import (
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// mqtt5Hooks are the hooks that make Mochi v2.7.9 do what the MQTT
// specification (3.1.1 and 5) requires where it does not by itself
// (docs/mochi-and-paho.md lists each; broker/conformance tests them).
func (s *Server) mqtt5Hooks() []mqtt.Hook {
	var hooks []mqtt.Hook
	if max := s.cfg.Limits.MaxKeepAlive; max > 0 {
		hooks = append(hooks, &serverKeepAlive{max: uint16(max / time.Second)})
	}
	resent := func(cl *mqtt.Client, pk packets.Packet) { s.inflight.OnQosPublish(cl, pk, pk.Created, 0) }
	hooks = append(hooks, newResendInOrder(s.mochi.Clients, resent))
	if max := int64(s.cfg.Limits.MessageExpiry.Seconds()); max > 0 {
		hooks = append(hooks, &expiryAsPublished{max: max})
	}
	return append(hooks, &receiveMaximumHook{})
}
