package roomlog

import (
	"maps"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/config"
)

// TestRoutedStopsBelowPublishesInProgress: Routed is the log's last
// sequence number for a conversation with no publish in progress, and the
// lowest floor of those in progress otherwise, until Mochi has routed them
// (OnPublished) or the client disconnects.
func TestRoutedStopsBelowPublishesInProgress(t *testing.T) {
	st, err := Open("", Options{})
	if err != nil {
		t.Fatal(err)
	}
	appendTo(t, st, "lobby", 3)
	appendTo(t, st, "@alice,bob", 2)
	h := New(st, nil, config.RoomLog{}, logrus.NewEntry(logrus.New()))
	publish := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}}
	a, b, c := &mqtt.Client{ID: "a"}, &mqtt.Client{ID: "b"}, &mqtt.Client{ID: "c"}

	steps := []struct {
		name string
		do   func()
		want map[string]uint64
	}{
		{"nothing in progress", func() {}, map[string]uint64{"lobby": 3, "@alice,bob": 2}},
		{"a's publish to lobby begins and appends #4", func() { h.routes.begin(a, "lobby", 3); appendTo(t, st, "lobby", 1) },
			map[string]uint64{"lobby": 3, "@alice,bob": 2}},
		{"b's begins and appends #5", func() { h.routes.begin(b, "lobby", 4); appendTo(t, st, "lobby", 1) },
			map[string]uint64{"lobby": 3, "@alice,bob": 2}},
		{"c's first message of a new room begins", func() { h.routes.begin(c, "new", 0) },
			map[string]uint64{"lobby": 3, "@alice,bob": 2, "new": 0}},
		{"a's is routed", func() { h.OnPublished(a, publish) },
			map[string]uint64{"lobby": 4, "@alice,bob": 2, "new": 0}},
		{"b's is routed, c disconnects before its is", func() { h.OnPublished(b, publish); h.OnDisconnect(c, nil, false) },
			map[string]uint64{"lobby": 5, "@alice,bob": 2}},
		{"a publish routed again ends nothing more", func() { h.OnPublished(a, publish) },
			map[string]uint64{"lobby": 5, "@alice,bob": 2}},
	}
	for _, s := range steps {
		s.do()
		if got := h.Routed(); !maps.Equal(got, s.want) {
			t.Errorf("%s: Routed = %v, want %v", s.name, got, s.want)
		}
	}
	if n := h.routes.n.Load(); n != 0 {
		t.Errorf("%d publishes still counted in progress", n)
	}
}

// BenchmarkRoutingTrack is what tracking adds to one chat publish: begin
// before the append, end when Mochi has handled it, from parallel
// publishers.
func BenchmarkRoutingTrack(b *testing.B) {
	var r routing
	b.RunParallel(func(pb *testing.PB) {
		cl := &mqtt.Client{}
		for pb.Next() {
			r.begin(cl, "lobby", 1)
			r.end(cl)
		}
	})
}
