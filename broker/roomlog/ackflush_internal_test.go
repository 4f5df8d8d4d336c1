package roomlog

import (
	"net"
	"slices"
	"sync"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// events records, in order, what the store and the connection were asked.
type events struct {
	mu   sync.Mutex // guards list
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s)
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// flushingConn is a connection that holds acknowledgements (AckFlusher).
type flushingConn struct {
	net.Conn // nil: only FlushAcks is used
	ev       *events
}

func (c flushingConn) FlushAcks() error { c.ev.add("flush acks"); return nil }

// recordingStore is a memory store that records its appends.
type recordingStore struct {
	*FileStore
	ev *events
}

func (s recordingStore) Append(conv string, timeNS int64, encode func(uint64) ([]byte, error)) (uint64, error) {
	s.ev.add("append")
	return s.FileStore.Append(conv, timeNS, encode)
}

// The publisher's held acknowledgements go out before an append that
// waits (durability machine, cluster mode), not before one that does not.
func TestHeldAcksGoOutBeforeAWaitingAppend(t *testing.T) {
	for _, tc := range []struct {
		name        string
		appendWaits bool
		want        []string
	}{
		{"append waits", true, []string{"flush acks", "append"}},
		{"append does not wait", false, []string{"append"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, err := Open("", Options{})
			if err != nil {
				t.Fatal(err)
			}
			ev := &events{}
			h := New(recordingStore{mem, ev}, nil, config.RoomLog{}, logrus.NewEntry(logrus.New()))
			h.appendWaits = tc.appendWaits
			cl := &mqtt.Client{ID: "alice-1"}
			cl.Net.Conn = flushingConn{ev: ev}
			payload, err := wire.Envelope{V: wire.Version, ID: "m1", From: "alice", Room: "lobby", Kind: wire.KindMessage, Body: "hi"}.Encode()
			if err != nil {
				t.Fatal(err)
			}
			pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1}, TopicName: wire.RoomTopic("lobby", "alice"), Payload: payload}
			if _, err := h.OnPublish(cl, pk); err != nil {
				t.Fatalf("OnPublish: %v", err)
			}
			if got := ev.get(); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
