package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

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
