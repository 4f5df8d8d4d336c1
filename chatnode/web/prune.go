package web

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
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
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("prune tab state of %s: %w", user, err)
	}
	type tabDir struct {
		name string
		mod  time.Time
	}
	var dirs []tabDir
	for _, e := range entries {
		if !e.IsDir() || !tabIDPattern.MatchString(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		dirs = append(dirs, tabDir{e.Name(), info.ModTime()})
	}
	if len(dirs) <= keep {
		return nil
	}
	slices.SortFunc(dirs, func(a, b tabDir) int { return a.mod.Compare(b.mod) })
	for _, d := range dirs[:len(dirs)-keep] {
		if t.open[tabKey{user: user, id: d.name}] != nil {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, d.name)); err != nil {
			return fmt.Errorf("prune tab state of %s: %w", user, err)
		}
	}
	return nil
}
