package roomlog

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// fileSize is the size of the log file in dir.
func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	st, err := os.Stat(filepath.Join(dir, "roomlog.dat"))
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func openAt(t *testing.T, dir string, opts Options) *FileStore {
	t.Helper()
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func closeStore(t *testing.T, s *FileStore) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// writeLog writes n records of size bytes to lobby in a log in dir, with no
// retention, and closes it.
func writeLog(t *testing.T, dir string, n, size int) {
	t.Helper()
	s := openAt(t, dir, Options{})
	for range n {
		appendSized(t, s, "lobby", time.Now(), size)
	}
	closeStore(t, s)
}

// seqs returns from..to.
func seqs(from, to uint64) []uint64 {
	var out []uint64
	for q := from; q <= to; q++ {
		out = append(out, q)
	}
	return out
}

// TestCompactionGivesSpaceBack: records retention no longer keeps are
// rewritten away at Open once they are more than half of a log of 1 MiB or
// more. What is served, Last, and the next sequence number do not change,
// also after everything in a room aged out (its newest record is kept on
// disk so Last survives), and a second Open finds nothing more to do.
func TestCompactionGivesSpaceBack(t *testing.T) {
	const n, size = 3000, 1000 // 3 MB per conversation
	tests := []struct {
		name   string
		opts   Options
		age    time.Duration // the clock moves this much before the reopen
		served []uint64      // what lobby serves after the reopen
		again  []uint64      // ... after one more append and a second reopen
		onDisk []uint64      // ... reopened without limits: what compaction kept, and the append
	}{
		{"count", Options{MaxMessages: 100}, 0, seqs(n-99, n), seqs(n-98, n+1), seqs(n-99, n+1)},
		{"bytes", Options{MaxBytes: 50 * size}, 0, seqs(n-49, n), seqs(n-48, n+1), seqs(n-49, n+1)},
		{"age, all of it", Options{MaxAge: time.Hour}, 2 * time.Hour, nil, []uint64{n + 1}, []uint64{n, n + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newFakeClock()
			opts := tt.opts
			opts.now = clock.Now
			s := openAt(t, dir, Options{now: clock.Now}) // written without limits: nothing trimmed yet
			for range n {
				appendSized(t, s, "lobby", clock.Now(), size)
				appendSized(t, s, "dev", clock.Now(), size)
			}
			closeStore(t, s)
			before := fileSize(t, dir)

			clock.Advance(tt.age)
			s = openAt(t, dir, opts)
			if s.Recovery.CompactedBytes <= 0 || fileSize(t, dir) > before/10 {
				t.Fatalf("compacted %d bytes, file %d of %d before: want it given back", s.Recovery.CompactedBytes, fileSize(t, dir), before)
			}
			if got := served(t, s, "lobby", 0); !slices.Equal(got, tt.served) {
				t.Errorf("lobby serves %v, want %v", got, tt.served)
			}
			if s.Last("lobby") != n || s.Last("dev") != n {
				t.Errorf("last %d and %d, want %d", s.Last("lobby"), s.Last("dev"), n)
			}
			if seq := appendSized(t, s, "lobby", clock.Now(), size); seq != n+1 {
				t.Errorf("next append got %d, want %d", seq, n+1)
			}
			closeStore(t, s)

			s = openAt(t, dir, opts)
			if s.Recovery.CompactedBytes != 0 {
				t.Errorf("second open compacted %d bytes again", s.Recovery.CompactedBytes)
			}
			if got := served(t, s, "lobby", 0); !slices.Equal(got, tt.again) {
				t.Errorf("after a second open lobby serves %v, want %v", got, tt.again)
			}
			closeStore(t, s)

			s = openAt(t, dir, Options{now: clock.Now})
			if got := served(t, s, "lobby", 0); !slices.Equal(got, tt.onDisk) {
				t.Errorf("without limits lobby serves %v, want %v: what compaction kept", got, tt.onDisk)
			}
			closeStore(t, s)
		})
	}
}

// TestCompactionThreshold: a small log, or one whose records are mostly
// kept, is left as it is.
func TestCompactionThreshold(t *testing.T) {
	for _, tt := range []struct {
		name     string
		n        int
		keep     int
		compacts bool
	}{
		{"small file", 500, 10, false},           // 0.5 MB
		{"most records kept", 3000, 2000, false}, // 3 MB, two thirds kept
		{"most records trimmed", 3000, 1000, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeLog(t, dir, tt.n, 1000)
			s := openAt(t, dir, Options{MaxMessages: tt.keep})
			defer closeStore(t, s)
			if got := s.Recovery.CompactedBytes > 0; got != tt.compacts {
				t.Errorf("compacted %d bytes, want compaction %v", s.Recovery.CompactedBytes, tt.compacts)
			}
			if got := served(t, s, "lobby", 0); len(got) != tt.keep || got[len(got)-1] != uint64(tt.n) {
				t.Errorf("serves %d records ending at %v, want the last %d", len(got), got[len(got)-1:], tt.keep)
			}
		})
	}
}

// TestUnfinishedCompaction: a crash during compaction leaves the log whole
// and a partial new file beside it, which the next Open removes.
func TestUnfinishedCompaction(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 10, 100)
	partial := filepath.Join(dir, "roomlog.dat"+compactSuffix)
	if err := os.WriteFile(partial, []byte("half a record"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openAt(t, dir, Options{})
	defer closeStore(t, s)
	if _, err := os.Stat(partial); !os.IsNotExist(err) {
		t.Errorf("the unfinished compaction is still there: %v", err)
	}
	if got := served(t, s, "lobby", 0); !slices.Equal(got, seqs(1, 10)) {
		t.Errorf("serves %v, want 1..10", got)
	}
}

// TestCompactionFailureIsNotFatal: when compaction cannot write its new file
// (a full disk is when it is wanted most), the store opens as it was, says
// why, and serves everything retention keeps.
func TestCompactionFailureIsNotFatal(t *testing.T) {
	dir := t.TempDir()
	writeLog(t, dir, 3000, 1000)
	before := fileSize(t, dir)
	full := errors.New("no space left on device")
	s := openAt(t, dir, Options{MaxMessages: 10, createCompacted: func(string) (*os.File, error) { return nil, full }})
	defer closeStore(t, s)
	if !errors.Is(s.Recovery.CompactionError, full) || s.Recovery.CompactedBytes != 0 || fileSize(t, dir) != before {
		t.Fatalf("compaction error %v, compacted %d, file %d of %d: want the error said and the file as it was",
			s.Recovery.CompactionError, s.Recovery.CompactedBytes, fileSize(t, dir), before)
	}
	if got := served(t, s, "lobby", 0); !slices.Equal(got, seqs(2991, 3000)) {
		t.Errorf("serves %v, want 2991..3000", got)
	}
	if seq := appendSized(t, s, "lobby", time.Now(), 1000); seq != 3001 {
		t.Errorf("next append got %d, want 3001", seq)
	}
}
