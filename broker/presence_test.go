package broker

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/distchat/distchat/broker/wire"
)

// TestPresenceMergesDevices: a user is online while any device is; an
// offline or a Will of one device becomes the others' presence, and only the
// last device's offline passes; a taken-over connection's Will keeps its
// device.
func TestPresenceMergesDevices(t *testing.T) {
	h := newPresenceHook()
	pres := func(status string, rooms ...string) []byte {
		b, err := json.Marshal(wire.Presence{V: 1, User: "alice", Status: status, Rooms: rooms, AtNS: 1})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	steps := []struct {
		name      string
		device    string
		payload   []byte
		keep      bool
		status    string // what reaches the topic
		devices   int
		rooms     []string
		rewritten bool
	}{
		{"laptop online", "alice-l", pres(wire.Online, "r1", "r2"), false, wire.Online, 1, []string{"r1", "r2"}, true},
		{"phone online", "alice-p", pres(wire.Online, "r1", "r3"), false, wire.Online, 2, []string{"r1", "r3", "r2"}, true},
		{"laptop offline", "alice-l", pres(wire.Offline), false, wire.Online, 1, []string{"r1", "r3"}, true},
		{"phone taken over: its Will", "alice-p", pres(wire.Offline), true, wire.Online, 1, []string{"r1", "r3"}, true},
		{"phone Will", "alice-p", pres(wire.Offline), false, wire.Offline, 0, nil, false},
		{"not a presence", "alice-p", []byte("hello"), false, "", 0, nil, false},
	}
	for _, s := range steps {
		out := h.merge(s.device, wire.PresenceTopic("alice"), s.payload, s.keep)
		ok := !bytes.Equal(out, s.payload)
		if ok != s.rewritten {
			t.Fatalf("%s: rewritten %v, want %v", s.name, ok, s.rewritten)
		}
		if !ok {
			continue
		}
		p, err := wire.DecodePresence(out)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if p.Status != s.status || p.Devices != s.devices || len(p.Rooms) != len(s.rooms) {
			t.Fatalf("%s: %+v, want %s on %d devices in %v", s.name, p, s.status, s.devices, s.rooms)
		}
		for i := range s.rooms {
			if p.Rooms[i] != s.rooms[i] {
				t.Fatalf("%s: rooms %v, want %v", s.name, p.Rooms, s.rooms)
			}
		}
	}
	if len(h.users) != 0 || len(h.owner) != 0 {
		t.Errorf("devices left behind: %v %v", h.users, h.owner)
	}
}
