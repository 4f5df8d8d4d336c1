package roomlog

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

const (
	// compactMin and the half-full rule decide when Open compacts: a file
	// of at least compactMin bytes whose kept records fill less than half
	// of it.
	compactMin    = 1 << 20
	compactSuffix = ".compact"
)

// keptBytes is the size the file would have with only what compaction
// keeps: every record retention keeps, and each conversation's newest.
func (s *FileStore) keptBytes() int64 {
	var n int64
	for conv, ci := range s.convs {
		per := int64(headerLen + 2 + len(conv) + 16)
		n += int64(len(ci.entries))*per + ci.bytes
		if len(ci.entries) == 0 && ci.last > 0 {
			n += per + int64(ci.newest.n)
		}
	}
	return n
}

// compact rewrites the log with only what retention keeps, plus each
// conversation's newest record even when retention dropped it (so Last
// survives the next Open; age retention drops it again there). The new
// file is written and synced beside the log, then renamed over it, so a
// crash leaves either file whole. An error before the rename leaves the
// store as it was (renamed false); after it, the store cannot go on with
// its old file. Callers own s (Open).
func (s *FileStore) compact() (renamed bool, err error) {
	tmpPath := s.path + compactSuffix
	if err := s.writeCompacted(tmpPath); err != nil {
		return false, errors.Join(fmt.Errorf("compact room log: %w", err), removeIfThere(tmpPath))
	}
	if err := os.Rename(tmpPath, s.path); err != nil {
		return false, errors.Join(fmt.Errorf("compact room log: %w", err), removeIfThere(tmpPath))
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return true, fmt.Errorf("compact room log: %w", err)
	}
	// Read the new file as Open would.
	before, found := s.size, s.Recovery.Records
	if err := s.f.Close(); err != nil {
		return true, fmt.Errorf("compact room log: close the old file: %w", err)
	}
	f, err := os.OpenFile(s.path, os.O_RDWR, 0o600)
	if err != nil {
		return true, fmt.Errorf("open compacted room log: %w", err)
	}
	s.f, s.convs, s.records = f, map[string]*convIndex{}, 0
	if err := s.recover(); err != nil {
		return true, fmt.Errorf("compacted room log: %w", err)
	}
	s.Recovery.Records, s.Recovery.CompactedBytes = found, before-s.size
	return true, nil
}

// writeCompacted writes and syncs what compaction keeps into path.
func (s *FileStore) writeCompacted(path string) error {
	create := s.opts.createCompacted
	if create == nil {
		create = func(path string) (*os.File, error) { return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600) }
	}
	tmp, err := create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	convs := make([]string, 0, len(s.convs))
	for conv := range s.convs {
		convs = append(convs, conv)
	}
	slices.Sort(convs)
	for _, conv := range convs {
		ci := s.convs[conv]
		es := ci.entries
		if len(es) == 0 && ci.last > 0 {
			es = []entry{ci.newest}
		}
		for _, e := range es {
			data := make([]byte, e.n)
			if _, err := s.f.ReadAt(data, e.off); err != nil {
				return errors.Join(fmt.Errorf("read %s #%d: %w", conv, e.seq, err), tmp.Close())
			}
			if _, err := w.Write(encodeRecord(conv, e.seq, e.ts, data)); err != nil {
				return errors.Join(err, tmp.Close())
			}
		}
	}
	return errors.Join(w.Flush(), tmp.Sync(), tmp.Close())
}

// removeIfThere removes path, which may not exist.
func removeIfThere(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
