package session

import (
	"os"
	"strings"
	"testing"
)

// TestDevicePositionAcrossRestarts: a device gets its id once, keeps it and
// its per-conversation positions across restarts, and a second device (its
// own state dir) is another device.
func TestDevicePositionAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	first, err := loadDeviceState(dir, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Device) != 10 || strings.ContainsAny(first.Device, "-+#/") || len(first.Convs) != 0 {
		t.Fatalf("new device state %+v, want a 10-character device id and no positions", first)
	}
	// The id is on disk before any position is: a crash keeps it.
	again, err := loadDeviceState(dir, "bob")
	if err != nil || again.Device != first.Device {
		t.Fatalf("reloaded device %q (%v), want %q", again.Device, err, first.Device)
	}
	convs := map[string]uint64{"@alice,bob": 3, "lobby": 41}
	if err := saveState(dir, "bob", nodeState{Device: first.Device, Convs: convs}); err != nil {
		t.Fatal(err)
	}
	restarted, err := loadDeviceState(dir, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if restarted.Device != first.Device || restarted.Convs["@alice,bob"] != 3 || restarted.Convs["lobby"] != 41 {
		t.Fatalf("after a restart %+v, want device %s and the saved positions", restarted, first.Device)
	}
	other, err := loadDeviceState(t.TempDir(), "bob")
	if err != nil || other.Device == first.Device {
		t.Fatalf("second device %q (%v): want its own id", other.Device, err)
	}
	none, err := loadDeviceState("", "bob")
	if err != nil || none.Device != "" || len(none.Convs) != 0 {
		t.Fatalf("no state dir: %+v, %v; want no device and no positions", none, err)
	}
}

func TestStateRefusesBadDeviceID(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(statePath(dir, "bob"), []byte(`{"v":1,"user":"bob","device":"a-alice","convs":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadDeviceState(dir, "bob"); err == nil || !strings.Contains(err.Error(), "device id") {
		t.Fatalf("a device id with '-' loaded (err %v); it could name another user", err)
	}
}

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
	if err := first.ident.release(); err != nil { // what Close does last
		t.Fatal(err)
	}
	again, err := New(cfg, testLogger(t, "me"), Options{})
	if err != nil {
		t.Fatalf("state dir after the first node closed: %v", err)
	}
	if err := again.ident.release(); err != nil {
		t.Fatal(err)
	}
}
