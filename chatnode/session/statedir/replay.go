package statedir

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// ReplayLog moves convs on to the last room sequence each conversation's
// delivered (not duplicate) "received" lines of node show in the log at
// path from offset on, and returns their message ids. A log shorter than
// offset (replaced) is read from its start; a torn last line is skipped.
func ReplayLog(path string, offset int64, node string, convs map[string]uint64) (ids []string, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close log %s: %w", path, cerr)
		}
	}()
	if fi, err := f.Stat(); err == nil && fi.Size() < offset {
		offset = 0
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, fmt.Errorf("read log %s: %w", path, err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	marker := []byte(`"event":"` + nodelog.EventReceived + `"`)
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
