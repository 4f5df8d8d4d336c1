package session

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/distchat/distchat/config"
)

// stateVersion is the format version of the state file.
const stateVersion = 1

// stateFile is what one device keeps between runs: its device id (which
// names its MQTT client id, so each device of a user has its own persistent
// session) and the last room sequence number it has handled per
// conversation, so that a restart catches up from the broker's room log
// instead of starting over or losing what came meanwhile.
type stateFile struct {
	V      int               `json:"v"`
	User   string            `json:"user"`
	Device string            `json:"device,omitempty"`
	Convs  map[string]uint64 `json:"convs"`
	// LogOffset, when the node's log is its record of deliveries
	// (RecordLog), is the log's size when Convs was written: every
	// "received" line after it is newer than Convs (see positions.go).
	LogOffset int64 `json:"log_offset,omitempty"`
}

// nodeState is a device's state as the session uses it.
type nodeState struct {
	// Device identifies this device of the user; "" without a state dir.
	Device string
	// Convs is the last room sequence handled per conversation key.
	Convs map[string]uint64
	// LogOffset is where the log's lines newer than Convs begin.
	LogOffset int64
}

// statePath is the state file of user in dir.
func statePath(dir, user string) string {
	return filepath.Join(dir, "chatnode-"+user+".json")
}

// newDeviceID returns a random device id: 10 characters of [a-z2-7], with
// no '-', so "<user>-<device>" names user and no one else (see the broker's
// client id rule).
func newDeviceID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

// loadDeviceState reads user's state from dir and gives a device that has
// none yet its id, saved at once so that a crash before the first save
// keeps it (a new id would leave the old session behind on the broker).
// Without a dir the state is empty and there is no device id.
func loadDeviceState(dir, user string) (nodeState, error) {
	st, err := loadState(dir, user)
	if err != nil || dir == "" || st.Device != "" {
		return st, err
	}
	if st.Device, err = newDeviceID(); err != nil {
		return nodeState{}, err
	}
	if err := saveState(dir, user, st); err != nil {
		return nodeState{}, err
	}
	return st, nil
}

// loadState reads the state of user from dir; a missing file is an empty state.
func loadState(dir, user string) (nodeState, error) {
	out := nodeState{Convs: map[string]uint64{}}
	if dir == "" {
		return out, nil
	}
	path := statePath(dir, user)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nodeState{}, fmt.Errorf("read state %s: %w", path, err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nodeState{}, fmt.Errorf("state %s: %w", path, err)
	}
	if st.V != stateVersion {
		return nodeState{}, fmt.Errorf("state %s: version %d, want %d", path, st.V, stateVersion)
	}
	if st.Device != "" && strings.ContainsAny(st.Device, "-+#/ ") {
		return nodeState{}, fmt.Errorf("state %s: device id %q may not contain '-', wildcards, '/' or spaces", path, st.Device)
	}
	for k, v := range st.Convs {
		out.Convs[k] = v
	}
	out.Device, out.LogOffset = st.Device, st.LogOffset
	return out, nil
}

// saveState writes st atomically (temporary file, then rename), so a crash
// leaves either the old or the new file, never a torn one.
func saveState(dir, user string, st nodeState) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	data, err := json.Marshal(stateFile{V: stateVersion, User: user, Device: st.Device, Convs: st.Convs, LogOffset: st.LogOffset})
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	path := statePath(dir, user)
	tmp, err := os.CreateTemp(dir, ".chatnode-state-*")
	if err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return errors.Join(fmt.Errorf("write state %s: %w", path, err), tmp.Close(), os.Remove(tmp.Name()))
	}
	if err := tmp.Close(); err != nil {
		return errors.Join(fmt.Errorf("write state %s: %w", path, err), os.Remove(tmp.Name()))
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return errors.Join(fmt.Errorf("write state %s: %w", path, err), os.Remove(tmp.Name()))
	}
	return nil
}

// identity is the session's identity on disk: the device id from the state
// dir and the MQTT client id it names, and the state dir's lock.
type identity struct {
	// clientID is this device's MQTT client id (see resolveClientID);
	// clean is true when it is made up for this run only, and the session
	// is then a clean one.
	clientID string
	device   string // the device id; "" without a state dir
	clean    bool
	// release gives the state dir's lock back (after the last save).
	release func() error
}

// resolveClientID picks the MQTT client id of this device: -client-id when
// given, else "<user>-<device>" with the device id kept in the state dir, so
// that each device of a user has its own persistent session and two devices
// online together never take the id from each other. The broker reserves a
// client id naming a user ("u", "u-…", "…-u") for that user, and the device
// id has no '-', so the id names the user and no one else. A node without a
// state dir has no lasting identity: it gets "<user>-<random>" for this run
// and a clean session (clean true), because a persistent session under an id
// never used again would stay on the broker collecting messages until it
// expires. Catch-up from the room log covers what a clean session does not
// keep while the node is away.
func resolveClientID(cfg config.Node, device string) (id string, clean bool, err error) {
	switch {
	case cfg.ClientID != "":
		return cfg.ClientID, false, nil
	case device != "":
		return cfg.User + "-" + device, false, nil
	}
	run, err := newDeviceID()
	if err != nil {
		return "", false, err
	}
	return cfg.User + "-" + run, true, nil
}
