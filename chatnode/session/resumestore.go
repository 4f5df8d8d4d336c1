package session

import (
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// resumeStore is paho's ordered memory store, except that it keeps a
// PUBLISH as a private copy and hands out copies of it. paho writes a
// PUBLISH to the network through the very packet it stored (encoding sets
// its length field), and on a reconnect its resume reads every stored
// PUBLISH and marks it a duplicate (sets Dup) while the writer of the
// connection just lost may still be encoding that packet: with one packet
// shared by the store, the old writer and the resume, that is a data race
// (the race detector reports it, in paho's client.go and packets/publish.go).
// With copies, the stored packet is written once, by Put, and only read
// after; the payload, which nobody writes, is shared.
type resumeStore struct{ *mqtt.OrderedMemoryStore }

// newResumeStore is an empty resumeStore.
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
