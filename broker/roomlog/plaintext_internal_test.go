package roomlog

import (
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// TestPlainIDs: the rules by which a plain-text publish gets its first
// copy's id back, step by step on one table with a controlled clock.
func TestPlainIDs(t *testing.T) {
	p := newPlainIDs()
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	pub := func(id uint16, dup bool, text string) packets.Packet {
		return packets.Packet{FixedHeader: packets.FixedHeader{Qos: 1, Dup: dup}, PacketID: id, Payload: []byte(text)}
	}
	steps := []struct {
		name   string
		client string
		pk     packets.Packet
		fresh  string
		want   string
		later  time.Duration // the clock moves before the step
	}{
		{"first copy", "a", pub(1, false, "hi"), "x1", "x1", 0},
		{"its resend", "a", pub(1, true, "hi"), "x2", "x1", 10 * time.Second},
		{"DUP with another text: new", "a", pub(1, true, "ho"), "x3", "x3", 0},
		{"another client's same packet: new", "b", pub(1, true, "ho"), "x4", "x4", 0},
		{"QoS 0 is never matched", "a", packets.Packet{Payload: []byte("ho")}, "x5", "x5", 0},
		{"a resend after plainTTL: new", "a", pub(2, false, "hey"), "x6", "x6", 0},
		{"...", "a", pub(2, true, "hey"), "x7", "x7", plainTTL},
		// A client that reuses a packet id within the minute (a new message,
		// no DUP, under an id still remembered) is never matched again: a
		// resend of a reused id could be a new message lost on its way in.
		{"c's first", "c", pub(1, false, "ok"), "y1", "y1", 0},
		{"c reuses id 1 at once", "c", pub(1, false, "ok"), "y2", "y2", 0},
		{"c's DUP: not matched", "c", pub(1, true, "ok"), "y3", "y3", 0},
		{"c's other ids neither", "c", pub(7, false, "yo"), "y4", "y4", 0},
		{"...", "c", pub(7, true, "yo"), "y5", "y5", 0},
	}
	for _, s := range steps {
		now = now.Add(s.later)
		if got := p.idFor("u", s.client, s.pk, s.fresh); got != s.want {
			t.Errorf("%s: id %s, want %s", s.name, got, s.want)
		}
	}
	// Another user on the same client id and packet id is another publish.
	if got := p.idFor("v", "a", pub(2, true, "hey"), "x9"); got != "x9" {
		t.Errorf("another user's resend got %s, want its own id", got)
	}
	// The table is bounded: expired publishes go first, then the oldest.
	now = now.Add(plainTTL)
	for i := range plainCap + 10 {
		p.idFor("u", "d", pub(uint16(i%65535+1), false, "x"), "y")
	}
	if len(p.ids) > plainCap {
		t.Errorf("table holds %d publishes, cap %d", len(p.ids), plainCap)
	}
	recent := pub(uint16((plainCap+9)%65535+1), true, "x")
	if got := p.idFor("u", "d", recent, "z"); got != "y" {
		t.Errorf("the newest publish was forgotten: its resend got %s", got)
	}
}
