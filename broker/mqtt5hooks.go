package broker

import (
	"fmt"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// addMQTT5Hooks adds the hooks that make Mochi v2.7.9 do what the MQTT
// specification (3.1.1 and 5) requires where it does not by itself (docs/mochi-and-paho.md
// lists each; broker/conformance tests them).
func (s *Server) addMQTT5Hooks() error {
	if h := newServerKeepAlive(s.cfg.Limits.MaxKeepAlive); h != nil {
		if err := s.mochi.AddHook(h, nil); err != nil {
			return fmt.Errorf("add server keep-alive hook: %w", err)
		}
	}
	resent := func(cl *mqtt.Client, pk packets.Packet) { s.inflight.OnQosPublish(cl, pk, pk.Created, 0) }
	if err := s.mochi.AddHook(newResendInOrder(s.mochi.Clients, resent), nil); err != nil {
		return fmt.Errorf("add resend-in-order hook: %w", err)
	}
	if max := int64(s.cfg.Limits.MessageExpiry.Seconds()); max > 0 {
		if err := s.mochi.AddHook(&expiryAsPublished{max: max}, nil); err != nil {
			return fmt.Errorf("add expiry-as-published hook: %w", err)
		}
	}
	if err := s.mochi.AddHook(&receiveMaximumHook{}, nil); err != nil {
		return fmt.Errorf("add receive maximum hook: %w", err)
	}
	return nil
}
