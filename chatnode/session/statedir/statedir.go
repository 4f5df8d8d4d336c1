// Package statedir is the chat node's state on disk, one directory per
// device (-state): a lock so that one node at a time uses it, the state file
// (the device id, and the last room sequence handled per conversation), the
// positions journal, and the replay of the node's own log. The session
// decides when each is written (chatnode/session/positions.go); this package
// decides how, so that a kill -9 at any moment leaves a directory that reads
// back: files are replaced by rename, the journal and the log are read up to
// their last whole line.
package statedir

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
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
	// (session.RecordLog), is the log's size when Convs was written: every
	// "received" line after it is newer than Convs (see ReplayLog).
	LogOffset int64 `json:"log_offset,omitempty"`
}

// State is a device's state as the session uses it.
type State struct {
	// Device identifies this device of the user; "" without a state dir.
	Device string
	// Convs is the last room sequence handled per conversation key.
	Convs map[string]uint64
	// LogOffset is where the log's lines newer than Convs begin.
	LogOffset int64
}

// Path is the state file of user in dir.
func Path(dir, user string) string {
	return filepath.Join(dir, "chatnode-"+user+".json")
}

// NewDeviceID returns a random device id: 10 characters of [a-z2-7], with
// no '-', so "<user>-<device>" names user and no one else (see the broker's
// client id rule).
func NewDeviceID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("device id: %w", err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])), nil
}

// LoadDevice reads user's state from dir and gives a device that has
// none yet its id, saved at once so that a crash before the first save
// keeps it (a new id would leave the old session behind on the broker).
// Without a dir the state is empty and there is no device id.
func LoadDevice(dir, user string) (State, error) {
	st, err := Load(dir, user)
	if err != nil || dir == "" || st.Device != "" {
		return st, err
	}
	if st.Device, err = NewDeviceID(); err != nil {
		return State{}, err
	}
	if err := Save(dir, user, st); err != nil {
		return State{}, err
	}
	return st, nil
}

// Load reads the state of user from dir; a missing file is an empty state.
func Load(dir, user string) (State, error) {
	out := State{Convs: map[string]uint64{}}
	if dir == "" {
		return out, nil
	}
	path := Path(dir, user)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read state %s: %w", path, err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return State{}, fmt.Errorf("state %s: %w", path, err)
	}
	if st.V != stateVersion {
		return State{}, fmt.Errorf("state %s: version %d, want %d", path, st.V, stateVersion)
	}
	if st.Device != "" && strings.ContainsAny(st.Device, "-+#/ ") {
		return State{}, fmt.Errorf("state %s: device id %q may not contain '-', wildcards, '/' or spaces", path, st.Device)
	}
	maps.Copy(out.Convs, st.Convs)
	out.Device, out.LogOffset = st.Device, st.LogOffset
	return out, nil
}

// Save writes st atomically (temporary file, then rename), so a crash
// leaves either the old or the new file, never a torn one.
func Save(dir, user string, st State) error {
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
	path := Path(dir, user)
	tmp, err := os.CreateTemp(dir, ".chatnode-state-*")
	if err != nil {
		return fmt.Errorf("write state %s: %w", path, err)
	}
	_, err = tmp.Write(data)
	if err = errors.Join(err, tmp.Close()); err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("write state %s: %w", path, err), os.Remove(tmp.Name()))
	}
	return nil
}
