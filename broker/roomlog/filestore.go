package roomlog

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/distchat/distchat/broker/rawio"
)

// FileStore is an append-only log file of CRC-checked records with an
// in-memory index per conversation; with no directory, all in memory.
// Record layout: [u32 length of body][u32 CRC-32C of body][body], body =
// [u16 conv length][conv][u64 seq][i64 time ns][data].
type FileStore struct {
	opts Options
	path string

	// mu guards the fields below up to commit; never held with commit.mu
	// (waitDurable reads size after releasing it; the fsync holds neither).
	mu        sync.RWMutex
	f         *os.File
	out       io.Writer // writes f with raw system calls (package rawio says why)
	size      int64
	convs     map[string]*convIndex
	closed    bool
	records   int64
	allocated int64  // the file's length when preallocated past size; -1 once that failed
	written   int64  // records written since Open, despite retention: the group commit's measure
	encoded   []byte // the buffer write lays each record out in, reused
	commit    groupCommit

	Recovery Recovery // what Open found, for the log
}

// Recovery is what opening a log file found.
type Recovery struct {
	Records         int64
	TornBytes       int64 // bytes of a torn or corrupt tail that were cut off
	CompactedBytes  int64 // file space compaction gave back at Open
	CompactionError error // why a compaction Open tried did not happen; the log is used as it was
	Duration        time.Duration
}

// Open opens (or creates) the log in dir; dir "" gives a memory-only store.
func Open(dir string, opts Options) (*FileStore, error) {
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.fsync == nil {
		opts.fsync = datasync
	}
	if opts.after == nil {
		opts.after = time.After
	}
	s := &FileStore{opts: opts, convs: map[string]*convIndex{}}
	s.commit.cond, s.commit.arrived = sync.NewCond(&s.commit.mu), make(chan struct{}, 1)
	if dir == "" {
		return s, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create room log dir: %w", err)
	}
	s.path = filepath.Join(dir, "roomlog.dat")
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open room log: %w", err)
	}
	s.f, s.out = f, rawio.FileWriter(f)
	start := time.Now()
	// A crash during compaction left its new file unfinished, the log whole.
	if err := removeIfThere(s.path + compactSuffix); err != nil {
		f.Close()
		return nil, fmt.Errorf("remove unfinished compaction: %w", err)
	}
	if err := s.recover(); err != nil {
		f.Close()
		return nil, err
	}
	if s.size >= compactMin && s.keptBytes() < s.size/2 {
		renamed, err := s.compact()
		if err != nil && renamed {
			s.f.Close()
			return nil, err
		}
		// Unless renamed, serve it as it was, saying why (a full disk wants compaction most).
		s.Recovery.CompactionError = err
	}
	s.Recovery.Duration = time.Since(start)
	return s, nil
}

// Append implements Store.
func (s *FileStore) Append(conv string, timeNS int64, encode func(seq uint64) ([]byte, error)) (uint64, error) {
	if len(conv) == 0 || len(conv) > 1024 {
		return 0, fmt.Errorf("room log: conversation name of %d bytes", len(conv))
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, errors.New("room log is closed")
	}
	_, known := s.convs[conv]
	ci := s.index(conv)
	seq := ci.last + 1
	data, err := encode(seq)
	if err != nil {
		if !known {
			delete(s.convs, conv) // a refused first message starts no conversation
		}
		s.mu.Unlock()
		return 0, fmt.Errorf("room log: encode %s #%d: %w", conv, seq, err)
	}
	end, err := s.write(conv, ci, seq, timeNS, data)
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if s.opts.Fsync {
		s.commit.wrote()
		if err := s.waitDurable(end); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// write stores conv's record seq and returns the file size after it, for
// waitDurable. Callers hold s.mu.
func (s *FileStore) write(conv string, ci *convIndex, seq uint64, timeNS int64, data []byte) (int64, error) {
	e := entry{seq: seq, ts: timeNS, n: int32(len(data))}
	if s.f == nil {
		s.add(ci, e, data)
		return 0, nil
	}
	buf := appendRecord(s.encoded[:0], conv, seq, timeNS, data)
	if cap(buf) <= maxKeptEncoding {
		s.encoded = buf
	}
	if s.opts.Fsync {
		s.preallocate(s.size + int64(len(buf)))
	}
	// Without Fsync the write is the guarantee: a kill -9 cannot take the page cache.
	if _, err := s.out.Write(buf); err != nil {
		// Cut the torn record (and the preallocated space) so the next
		// append starts clean, and refuse this one: the client resends.
		terr := s.f.Truncate(s.size)
		_, serr := s.f.Seek(s.size, io.SeekStart)
		s.allocated = min(s.allocated, s.size)
		return 0, fmt.Errorf("room log: write: %w", errors.Join(err, terr, serr))
	}
	e.off = s.size + headerLen + int64(2+len(conv)+16)
	s.size += int64(len(buf))
	s.written++
	s.add(ci, e, nil)
	return s.size, nil
}

// ErrOutOfOrder is Put's answer to a record that does not follow its conversation's last.
var ErrOutOfOrder = errors.New("record does not follow the conversation's last one")

// Put stores a record numbered elsewhere (a replicated log's view, durable
// without fsync): seq follows conv's last, or is any for a new conv.
func (s *FileStore) Put(conv string, seq uint64, timeNS int64, data []byte) error {
	if len(conv) == 0 || len(conv) > 1024 || seq == 0 {
		return fmt.Errorf("room log: put %d bytes of conversation name at sequence %d", len(conv), seq)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("room log is closed")
	}
	ci := s.convs[conv]
	if ci != nil && seq != ci.last+1 {
		return fmt.Errorf("room log: put %s #%d after #%d: %w", conv, seq, ci.last, ErrOutOfOrder)
	}
	_, err := s.write(conv, s.index(conv), seq, timeNS, data)
	return err
}

// preallocChunk is how far ahead of its writes a synced log extends its
// file: one size change, and so one journal commit, per chunk.
const preallocChunk = 8 << 20

// preallocate makes the file need bytes long a chunk at a time, so fdatasyncs
// do not change its size (recovery cuts the zeros); if refused, goes without. Holds mu.
func (s *FileStore) preallocate(need int64) {
	if s.allocated < 0 || need <= s.allocated {
		return
	}
	size := max(need, s.size) + cmp.Or(s.opts.chunk, preallocChunk)
	if err := allocate(s.f, size); err != nil {
		s.allocated = -1
		return
	}
	s.allocated = size
}

// Read implements Store.
func (s *FileStore) Read(conv string, after uint64, limit int) ([]Record, error) {
	return s.loadSpan(conv, func(ci *convIndex) (int, int) {
		if len(ci.entries) == 0 || after >= ci.last {
			return 0, 0
		}
		first := ci.entries[0].seq
		i := int(max(after+1, first) - first) // the first record past after
		if limit > 0 && len(ci.entries)-i > limit {
			return i, i + limit
		}
		return i, len(ci.entries)
	})
}

// Newest implements Store.
func (s *FileStore) Newest(conv string, n int) ([]Record, error) {
	return s.loadSpan(conv, func(ci *convIndex) (int, int) {
		return max(len(ci.entries)-max(n, 0), 0), len(ci.entries)
	})
}

// loadSpan loads conv's records i to j-1 as span gives them, after MaxAge (a
// quiet conversation would otherwise serve old records until its next
// append). The file is read outside s.mu: records stay put until Close.
func (s *FileStore) loadSpan(conv string, span func(*convIndex) (i, j int)) ([]Record, error) {
	s.expire(conv)
	s.mu.RLock()
	var es []entry
	var data [][]byte
	if ci := s.convs[conv]; ci != nil {
		if i, j := span(ci); i < j {
			es = slices.Clone(ci.entries[i:j])
			if s.f == nil {
				data = slices.Clone(ci.data[i:j])
			}
		}
	}
	s.mu.RUnlock()
	if len(es) == 0 {
		return nil, nil
	}
	out := make([]Record, len(es))
	for k, e := range es {
		out[k] = Record{Seq: e.seq, TimeNS: e.ts}
		if data != nil {
			out[k].Data = data[k]
			continue
		}
		buf := make([]byte, e.n)
		if _, err := s.f.ReadAt(buf, e.off); err != nil {
			return nil, fmt.Errorf("room log: read record %d: %w", e.seq, err)
		}
		out[k].Data = buf
	}
	return out, nil
}

// Last implements Store.
func (s *FileStore) Last(conv string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ci := s.convs[conv]; ci != nil {
		return ci.last
	}
	return 0
}

// Conversations implements Store.
func (s *FileStore) Conversations() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.convs))
}

// Counts returns the conversations, records served and bytes on file, after MaxAge.
func (s *FileStore) Counts() (convs int, records int64, fileBytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.MaxAge > 0 {
		now := s.opts.now().UnixNano()
		for _, ci := range s.convs {
			s.trim(ci, now)
		}
	}
	return len(s.convs), s.records, s.size
}

// Close syncs and closes the file. Appends after Close fail.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.f == nil {
		return nil
	}
	var err error
	if s.allocated > s.size { // give the preallocated tail back
		err = s.f.Truncate(s.size)
	}
	return errors.Join(err, s.f.Sync(), s.f.Close())
}

// Store is the room log's storage, one sequence per conversation (a room or
// DM key); an interface, so the log can be a replicated one (broker/cluster).
type Store interface {
	// Append numbers, encodes and stores conv's next record, as durably as promised.
	Append(conv string, timeNS int64, encode func(seq uint64) ([]byte, error)) (uint64, error)
	// Read returns up to limit records of conv with sequence > after, in order.
	Read(conv string, after uint64, limit int) ([]Record, error)
	// Newest returns the last n records of conv, in order.
	Newest(conv string, n int) ([]Record, error)
	// Last is the conversation's highest sequence number (0: none yet).
	Last(conv string) uint64
	// Conversations lists every conversation key with a sequence (also
	// one retention emptied), from which the hook rebuilds its DM index.
	Conversations() []string
	Close() error
}

// DuplicateError is a replicated Store's answer to an Append of a message it
// holds under the same sender and id (a resend after a broker died before
// its PUBACK): the hook routes the record at Seq again.
type DuplicateError struct {
	Conv string
	Seq  uint64
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("room log: %s already holds this message as #%d", e.Conv, e.Seq)
}

// Record is one stored message.
type Record struct {
	Seq    uint64
	TimeNS int64
	Data   []byte
}

// Options configure a FileStore.
type Options struct {
	// Fsync makes Append wait until the record is on disk (group commit);
	// without it the page cache survives kill -9, not a machine crash.
	Fsync bool
	// Retention per conversation (0: unlimited): MaxMessages and MaxBytes trim
	// the oldest on append, keeping the newest; MaxAge drops older records
	// (quiet ones at a read or Counts). Last counts them; Open frees their space.
	MaxMessages int
	MaxAge      time.Duration
	MaxBytes    int64

	// Test hooks, so tests need not sleep or fill a disk; zero: the default.
	now             func() time.Time                     // MaxAge's clock (time.Now)
	createCompacted func(path string) (*os.File, error)  // compaction's new file (os.OpenFile)
	fsync           func(*os.File) error                 // makes the file durable (datasync)
	after           func(time.Duration) <-chan time.Time // the group commit's gathering timer (time.After)
	chunk           int64                                // how far ahead preallocation extends the file (preallocChunk)
}
