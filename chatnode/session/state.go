package session

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateVersion is the format version of the state file.
const stateVersion = 1

// stateFile is what the node keeps between runs: the last room sequence
// number it has handled per conversation, so that a restart catches up from
// the broker's room log instead of starting over or losing what came meanwhile.
type stateFile struct {
	V     int               `json:"v"`
	User  string            `json:"user"`
	Convs map[string]uint64 `json:"convs"`
}

// statePath is the state file of user in dir.
func statePath(dir, user string) string {
	return filepath.Join(dir, "chatnode-"+user+".json")
}

// loadState reads the state of user from dir; a missing file is an empty state.
func loadState(dir, user string) (map[string]uint64, error) {
	out := map[string]uint64{}
	if dir == "" {
		return out, nil
	}
	path := statePath(dir, user)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	if st.V != stateVersion {
		return nil, fmt.Errorf("state %s: version %d, want %d", path, st.V, stateVersion)
	}
	for k, v := range st.Convs {
		out[k] = v
	}
	return out, nil
}

// saveState writes the state atomically (temporary file, then rename), so a
// crash leaves either the old or the new file, never a torn one.
func saveState(dir, user string, convs map[string]uint64) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state dir %s: %w", dir, err)
	}
	data, err := json.Marshal(stateFile{V: stateVersion, User: user, Convs: convs})
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
