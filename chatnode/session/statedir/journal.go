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

// ReadJournal moves convs on to the positions in the journal at path.
func ReadJournal(path string, convs map[string]uint64) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read positions journal: %w", err)
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
	return nil
}
