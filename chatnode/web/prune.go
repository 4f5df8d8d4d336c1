package web

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// keepDirsPerUser is how many tab state dirs per user the node keeps, as a
// multiple of MaxTabsPerUser: a reload finds its tab's device again, while
// the dirs of tabs closed long ago do not pile up on disk.
const keepDirsPerUser = 2

// pruneDirs removes the least recently used state dirs of user beyond
// keep, never one of an open tab: it runs under t.mu, and an open tab is
// in t.open from before its session takes its dir until after it let go.
// The broker's session of a removed device expires in its own time.
func (t *tabs) pruneDirs(root, user string, keep int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	dir := filepath.Join(root, user)
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("prune tab state of %s: %w", user, err)
	}
	var dirs []fs.FileInfo
	for _, e := range entries {
		if !e.IsDir() || !tabIDPattern.MatchString(e.Name()) {
			continue
		}
		if info, err := e.Info(); err == nil { // else removed meanwhile
			dirs = append(dirs, info)
		}
	}
	if len(dirs) <= keep {
		return nil
	}
	slices.SortFunc(dirs, func(a, b fs.FileInfo) int { return a.ModTime().Compare(b.ModTime()) })
	for _, d := range dirs[:len(dirs)-keep] {
		if t.open[tabKey{user: user, id: d.Name()}] != nil {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, d.Name())); err != nil {
			return fmt.Errorf("prune tab state of %s: %w", user, err)
		}
	}
	return nil
}
