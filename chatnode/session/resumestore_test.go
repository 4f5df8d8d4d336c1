package session

import (
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// TestResumeStoreGetCopiesPublish: the store keeps a PUBLISH apart from the
// packet paho writes to the network (encoding changes its length field),
// and what paho's resume changes on a PUBLISH it got from the store (Dup)
// reaches neither; other packets are kept and returned as they are.
func TestResumeStoreGetCopiesPublish(t *testing.T) {
	s := newResumeStore()
	s.Open()
	t.Cleanup(s.Close)
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.Qos, pub.MessageID, pub.TopicName, pub.Payload = 1, 7, "chat/rooms/lab/alice", []byte("hello")
	s.Put("o.7", pub)
	sub := packets.NewControlPacket(packets.Subscribe).(*packets.SubscribePacket)
	sub.MessageID = 8
	s.Put("o.8", sub)

	got, ok := s.Get("o.7").(*packets.PublishPacket)
	if !ok || got == pub {
		t.Fatalf("Get returned %p (%T), want a copy of the stored %p", got, got, pub)
	}
	if got.MessageID != 7 || got.TopicName != pub.TopicName || string(got.Payload) != "hello" || got.Qos != 1 {
		t.Fatalf("copy differs: %+v", got)
	}
	got.Dup = true                       // what resume does
	pub.FixedHeader.RemainingLength = 99 // what encoding pub does
	again := s.Get("o.7").(*packets.PublishPacket)
	if pub.Dup || again.Dup || again.RemainingLength == 99 {
		t.Fatalf("the stored packet changed: Dup %v, length %d", again.Dup, again.RemainingLength)
	}
	if s.Get("o.8") != sub {
		t.Fatal("a SUBSCRIBE came back as another packet")
	}
	if s.Get("o.9") != nil {
		t.Fatal("a missing key returned a packet")
	}
}
