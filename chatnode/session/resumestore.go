package session

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// resumeStore is paho's ordered memory store, except that Get returns a
// copy of a stored PUBLISH. On a reconnect paho's resume reads every stored
// PUBLISH and marks it a duplicate (sets Dup) before sending it again,
// while the writer of the connection just lost may still be encoding that
// very packet: with the store's own packet the two goroutines share it (a
// data race the race detector reports, in paho's client.go and
// packets/publish.go). A copy leaves the stored packet to the old writer;
// the payload, which neither writes, is shared.
type resumeStore struct{ *mqtt.OrderedMemoryStore }

// newResumeStore is an empty resumeStore.
func newResumeStore() resumeStore { return resumeStore{mqtt.NewOrderedMemoryStore()} }

// Get returns the packet stored under key, a PUBLISH as a copy.
func (s resumeStore) Get(key string) packets.ControlPacket {
	pk := s.OrderedMemoryStore.Get(key)
	if p, ok := pk.(*packets.PublishPacket); ok {
		cp := *p
		return &cp
	}
	return pk
}
