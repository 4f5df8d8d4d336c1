// Package statedir is the chat node's state on disk, one directory per
// device (-state): its lock, the state file, the positions journal and the
// replay of the node's own log. The session decides when each is written;
// this package decides how, so that a kill -9 at any moment leaves a
// directory that reads back: files are replaced by rename, and the journal
// and the log are read up to their last whole line.
package statedir

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// stateVersion is the format version of the state file.
const stateVersion = 1

// State is what one device keeps between runs, so that a restart catches
// up from the broker's room log instead of starting over.
type State struct {
	// Device identifies this device of the user (it names its MQTT client
	// id); "" without a state dir.
	Device string            `json:"device,omitempty"`
	Convs  map[string]uint64 `json:"convs"` // the last room sequence handled per conversation key
	// LogOffset is the log's size when Convs was written: with the log as
	// the record (session.RecordLog), later "received" lines are newer.
	LogOffset int64 `json:"log_offset,omitempty"`
}

type stateFile struct { // the state file's JSON
	V    int    `json:"v"`
	User string `json:"user"`
	State
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

// LoadDevice reads user's state from dir and gives a device without an id
// one, saved at once: a new id after a crash would leave the old session
// behind on the broker. Without a dir the state is empty, with no id.
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
	if st.Convs == nil {
		st.Convs = out.Convs
	}
	return st.State, nil
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
	data, err := json.Marshal(stateFile{V: stateVersion, User: user, State: st})
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

// JournalPath is the positions journal of user in dir.
func JournalPath(dir, user string) string {
	return filepath.Join(dir, "chatnode-"+user+".journal")
}

// OpenJournal moves convs on to the positions in user's journal in dir and
// opens the journal for appending.
func OpenJournal(dir, user string, convs map[string]uint64) (*os.File, error) {
	path := JournalPath(dir, user)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read positions journal: %w", err)
	}
	lines := strings.Split(string(data), "\n")
	for _, line := range lines[:len(lines)-1] { // the last, unended one is torn
		seqText, conv, ok := strings.Cut(line, " ")
		seq, err := strconv.ParseUint(seqText, 10, 64)
		if !ok || err != nil || conv == "" {
			continue
		}
		convs[conv] = max(convs[conv], seq)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open positions journal: %w", err)
	}
	return f, nil
}

// ReplayLog moves convs on to the last room sequence each conversation's
// delivered (not duplicate) "received" lines of node show in the log at
// path from offset on, and returns their message ids. A log shorter than
// offset (replaced) is read from its start; a torn last line is skipped.
func ReplayLog(path string, offset int64, node string, convs map[string]uint64) ([]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	defer f.Close() // read only: closing it cannot lose anything
	if fi, err := f.Stat(); err == nil && fi.Size() < offset {
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	marker := []byte(`"event":"` + nodelog.EventReceived + `"`)
	var ids []string
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // the end, or a torn last line
		}
		if !bytes.Contains(line, marker) {
			continue
		}
		var l nodelog.Record
		if json.Unmarshal(line, &l) != nil || l.Node != node || l.Duplicate || l.RoomSeq == 0 {
			continue
		}
		conv := l.Room
		if l.To != "" {
			conv = wire.DMConversation(l.From, l.To)
		}
		convs[conv] = max(convs[conv], l.RoomSeq)
		ids = append(ids, l.ID)
	}
	return ids, nil
}
