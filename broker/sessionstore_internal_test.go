package broker

import (
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
)

func TestSessionStoreProvides(t *testing.T) {
	s := newSessionStore(true)
	tests := []struct {
		name  string
		event byte
		want  bool
	}{
		{"sys info tick: not stored, so not written during Close", mqtt.OnSysInfoTick, false},
		{"messages in flight", mqtt.OnQosPublish, true},
		{"acknowledgements", mqtt.OnQosComplete, true},
		{"subscriptions", mqtt.OnSubscribed, true},
		{"retained messages", mqtt.OnRetainMessage, true},
		{"stored sessions at start", mqtt.StoredClients, true},
	}
	for _, tt := range tests {
		if got := s.Provides(tt.event); got != tt.want {
			t.Errorf("%s: Provides = %v, want %v", tt.name, got, tt.want)
		}
	}
}
