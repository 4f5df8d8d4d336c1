package session

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// resumeStore is paho's ordered memory store holding a PUBLISH as a private
// copy and handing out copies. paho encodes a PUBLISH through the packet it
// stored, and a resume marks stored packets Dup while the lost connection's
// writer may still encode them: one shared packet is a data race. With
// copies the stored packet is written once, by Put; payloads are shared.
type resumeStore struct{ *mqtt.OrderedMemoryStore }

func newResumeStore() resumeStore { return resumeStore{mqtt.NewOrderedMemoryStore()} }

// Put stores m under key, a PUBLISH as a copy.
func (s resumeStore) Put(key string, m packets.ControlPacket) {
	s.OrderedMemoryStore.Put(key, copyPublish(m))
}

// Get returns the packet stored under key, a PUBLISH as a copy.
func (s resumeStore) Get(key string) packets.ControlPacket {
	return copyPublish(s.OrderedMemoryStore.Get(key))
}

// copyPublish returns a copy of a PUBLISH, and any other packet as it is.
func copyPublish(m packets.ControlPacket) packets.ControlPacket {
	if p, ok := m.(*packets.PublishPacket); ok {
		cp := *p
		return &cp
	}
	return m
}
