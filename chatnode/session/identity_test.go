package session

import (
	"strings"
	"testing"
)

func TestResolveClientID(t *testing.T) {
	cfg := rigConfig(t)
	cases := []struct {
		name, given, device string
		want                string // "" : <user>-<random>
		clean               bool
	}{
		{"given", "my-id", "abc", "my-id", false},
		{"device", "", "abc", "me-abc", false},
		{"no state dir", "", "", "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg.ClientID = c.given
			id, clean, err := resolveClientID(cfg, c.device)
			if err != nil {
				t.Fatal(err)
			}
			if clean != c.clean || (c.want != "" && id != c.want) || (c.want == "" && (!strings.HasPrefix(id, "me-") || len(id) != 13)) {
				t.Fatalf("client id %q clean %v, want %q clean %v", id, clean, c.want, c.clean)
			}
		})
	}
}

// TestStateDirIsOneDevice: a second node on a state dir in use is refused
// (it would share the device's client id and kick the first off in a
// loop); once the first has closed, the dir is free again.
func TestStateDirIsOneDevice(t *testing.T) {
	cfg := rigConfig(t)
	cfg.StateDir = t.TempDir()
	first, err := New(cfg, testLogger(t, "me"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, testLogger(t, "me"), Options{}); err == nil || !strings.Contains(err.Error(), "in use by another chatnode") {
		t.Fatalf("second node on the same state dir: err %v, want refused", err)
	}
	if err := first.release(); err != nil { // what Close does last
		t.Fatal(err)
	}
	again, err := New(cfg, testLogger(t, "me"), Options{})
	if err != nil {
		t.Fatalf("state dir after the first node closed: %v", err)
	}
	if err := again.release(); err != nil {
		t.Fatal(err)
	}
}
