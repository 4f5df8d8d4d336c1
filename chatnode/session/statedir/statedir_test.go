package statedir

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
	first, err := LoadDevice(dir, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Device) != 10 || strings.ContainsAny(first.Device, "-+#/") || len(first.Convs) != 0 {
		t.Fatalf("new device state %+v, want a 10-character device id and no positions", first)
	}
	// The id is on disk before any position is: a crash keeps it.
	again, err := LoadDevice(dir, "bob")
	if err != nil || again.Device != first.Device {
		t.Fatalf("reloaded device %q (%v), want %q", again.Device, err, first.Device)
	}
	convs := map[string]uint64{"@alice,bob": 3, "lobby": 41}
	if err := Save(dir, "bob", State{Device: first.Device, Convs: convs}); err != nil {
		t.Fatal(err)
	}
	restarted, err := LoadDevice(dir, "bob")
	if err != nil {
		t.Fatal(err)
	}
	if restarted.Device != first.Device || restarted.Convs["@alice,bob"] != 3 || restarted.Convs["lobby"] != 41 {
		t.Fatalf("after a restart %+v, want device %s and the saved positions", restarted, first.Device)
	}
	other, err := LoadDevice(t.TempDir(), "bob")
	if err != nil || other.Device == first.Device {
		t.Fatalf("second device %q (%v): want its own id", other.Device, err)
	}
	none, err := LoadDevice("", "bob")
	if err != nil || none.Device != "" || len(none.Convs) != 0 {
		t.Fatalf("no state dir: %+v, %v; want no device and no positions", none, err)
	}
}

func TestStateRefusesBadDeviceID(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(Path(dir, "bob"), []byte(`{"v":1,"user":"bob","device":"a-alice","convs":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDevice(dir, "bob"); err == nil || !strings.Contains(err.Error(), "device id") {
		t.Fatalf("a device id with '-' loaded (err %v); it could name another user", err)
	}
}
