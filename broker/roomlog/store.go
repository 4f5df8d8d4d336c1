package roomlog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"
)

// Store is the room log's storage: one sequence per conversation (a room, or
// a DM conversation key). The hook uses only this interface, so the log can
// move to a replicated engine (NATS JetStream, Kafka) without touching the
// hook or the nodes.
type Store interface {
	// Append assigns the conversation's next sequence number, asks encode
	// for the record's bytes with it, and stores them. When it returns
	// without error the record is as durable as the store promises.
	Append(conv string, timeNS int64, encode func(seq uint64) ([]byte, error)) (uint64, error)
	// Read returns up to limit records of conv with sequence > after, in order.
	Read(conv string, after uint64, limit int) ([]Record, error)
	// Newest returns the last n records of conv, in order.
	Newest(conv string, n int) ([]Record, error)
	// Last is the conversation's highest sequence number (0: none yet).
	Last(conv string) uint64
	// Conversations lists every conversation key the log has a sequence
	// for (also those whose records retention has dropped), so the hook
	// can rebuild its index of each user's DM conversations.
	Conversations() []string
	Close() error
}

// DuplicateError is a replicated Store's answer to an Append of a message it
// already holds under the same sender and id: a publish resent to another
// broker after the first one acknowledged it to the log but died before
// its PUBACK. Seq is the stored record's sequence number; the hook routes
// that record again instead of storing a second copy.
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
	// Fsync makes Append wait until the record is on disk (group commit: one
	// fsync covers every append waiting for it). Without it a record is in
	// the OS page cache when Append returns: it survives kill -9 of the
	// broker, not a machine crash.
	Fsync bool
	// Retention per conversation; zero means unlimited. MaxMessages and
	// MaxBytes (bytes of record data) trim a conversation's oldest records
	// when an append takes it over them, always keeping its newest record.
	// MaxAge drops records stamped longer ago than that on the store's
	// clock, also in a conversation that has gone quiet (when it is next
	// read, or Counts is called). Trimmed records are no longer served; Last
	// still counts them. Open gives their disk space back: when what
	// retention keeps fills less than half of a log of 1 MiB or more, it
	// rewrites the log with only that (see compact).
	MaxMessages int
	MaxAge      time.Duration
	MaxBytes    int64

	// now is the clock MaxAge is measured on; nil means time.Now. Tests set
	// it to move time without sleeping.
	now func() time.Time
	// createCompacted creates compaction's new file; nil means os.OpenFile.
	// Tests set it to make compaction fail.
	createCompacted func(path string) (*os.File, error)
	// fsync makes the log file durable; nil means (*os.File).Sync. Tests
	// set it to count and hold fsyncs.
	fsync func(*os.File) error
	// after is the group commit's timer (how long a leader gathers); nil
	// means time.After. Tests set it to end a gathering at once.
	after func(time.Duration) <-chan time.Time
	// chunk is how far ahead preallocation extends the file; 0 means
	// preallocChunk. The recovery fuzzer makes it small: every input
	// would otherwise preallocate and scan 8 MiB.
	chunk int64
}

// entry is one record in a conversation's index: where its data lies in
// the file. It holds no pointer, so the garbage collector does not scan an
// index, however many records it holds, and a record costs 32 bytes of
// memory (memory mode keeps the data beside it, in convIndex.data).
type entry struct {
	seq uint64
	ts  int64
	off int64 // the data's offset in the file
	n   int32 // the data's length
}

type convIndex struct {
	entries []entry  // consecutive sequence numbers
	data    [][]byte // memory mode only: data[i] is entries[i]'s record
	bytes   int64
	last    uint64 // survives retention trimming entries away
	newest  entry  // the record numbered last, also when trimmed: compaction keeps it, so last survives
}

// FileStore is an append-only log file of CRC-checked records with an
// in-memory index per conversation. With no directory it keeps records in
// memory (same behaviour, nothing survives a restart).
//
// Record layout: [u32 length of body][u32 CRC-32C of body][body], body =
// [u16 conv length][conv][u64 seq][i64 time ns][data].
type FileStore struct {
	opts Options
	path string

	// mu guards f, size, allocated, convs, closed, records and written.
	// commit.mu guards the group commit's state. The two are never held
	// together: waitDurable releases commit.mu before it reads size under
	// mu, and the fsync itself runs under neither.
	mu      sync.RWMutex
	f       *os.File
	size    int64
	convs   map[string]*convIndex
	closed  bool
	records int64
	// allocated is the file's length when preallocation made it longer
	// than size; -1 once preallocation failed.
	allocated int64

	// written counts the records written to the file since Open (guarded
	// by mu; never lowered by retention): the group commit's measure of a
	// batch.
	written int64

	// encoded is the buffer write lays a record out in, reused from one
	// append to the next (guarded by mu): the record is written to the
	// file, never kept.
	encoded []byte

	commit groupCommit // durability machine (groupcommit.go)

	// Recovery describes what Open found, for the log.
	Recovery Recovery
}

// Recovery is what opening a log file found.
type Recovery struct {
	Records   int64
	TornBytes int64 // bytes of a torn or corrupt tail that were cut off
	// CompactedBytes is the file space given back by compaction (records
	// retention no longer keeps, rewritten away at Open).
	CompactedBytes int64
	// CompactionError is why a compaction Open tried did not happen; the
	// log is then used as it was.
	CompactionError error
	Duration        time.Duration
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const headerLen = 8

// maxRecord bounds one record, so a corrupt length cannot make recovery
// allocate gigabytes.
const maxRecord = 16 << 20

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
	s.commit.init()
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
	s.f = f
	start := time.Now()
	// A compaction that a crash interrupted left its new file unfinished;
	// the log itself is whole until the rename.
	if err := removeIfThere(s.path + compactSuffix); err != nil {
		f.Close()
		return nil, fmt.Errorf("remove unfinished compaction: %w", err)
	}
	if err := s.recover(); err != nil {
		f.Close()
		return nil, err
	}
	if kept := s.keptBytes(); s.size >= compactMin && kept < s.size/2 {
		if renamed, err := s.compact(); err != nil && renamed {
			s.f.Close()
			return nil, err
		} else if err != nil {
			// The log is whole and open as it was: serve it, say why it was
			// not compacted (a full disk is when compaction is wanted most).
			s.Recovery.CompactionError = err
		}
	}
	s.Recovery.Duration = time.Since(start)
	return s, nil
}

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

// recover rebuilds the index and cuts a torn or corrupt tail off the file.
func (s *FileStore) recover() error {
	r := bufio.NewReaderSize(s.f, 1<<20)
	var off int64
	hdr := make([]byte, headerLen)
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			break // torn header
		}
		n := binary.LittleEndian.Uint32(hdr)
		if n < 18 || n > maxRecord {
			break
		}
		if cap(body) < int(n) {
			body = make([]byte, n)
		}
		body = body[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			break // torn body
		}
		if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			break
		}
		conv, seq, ts, dataOff, err := parseBody(body)
		if err != nil {
			break
		}
		ci := s.index(conv)
		// A conversation's records are consecutive; compaction may have
		// left only its newest ones, so the first may start above 1.
		if seq == 0 || (ci.last > 0 && seq != ci.last+1) {
			return fmt.Errorf("room log %s: record at offset %d has sequence %d for %q, want %d", s.path, off, seq, conv, ci.last+1)
		}
		s.add(ci, entry{seq: seq, ts: ts, off: off + headerLen + int64(dataOff), n: int32(int(n) - dataOff)}, nil)
		off += headerLen + int64(n)
		s.Recovery.Records++
	}
	st, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("stat room log: %w", err)
	}
	if st.Size() > off {
		zeros, err := zeroTail(s.f, off, st.Size())
		if err != nil {
			return fmt.Errorf("read tail of room log: %w", err)
		}
		if !zeros { // zeros are preallocated space, not a torn record
			s.Recovery.TornBytes = st.Size() - off
		}
		if err := s.f.Truncate(off); err != nil {
			return fmt.Errorf("cut torn tail of room log: %w", err)
		}
	}
	if _, err := s.f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seek room log: %w", err)
	}
	s.size, s.commit.durable = off, off
	return nil
}

// zeroTail reports whether the bytes of f from off to end are all zero. It
// compares 64 KiB at a time: after a crash the preallocated tail is up to
// a chunk (8 MiB) of zeros, read at every such start.
func zeroTail(f *os.File, off, end int64) (bool, error) {
	buf := make([]byte, 64<<10)
	zeros := make([]byte, len(buf))
	r := io.NewSectionReader(f, off, end-off)
	for {
		n, err := io.ReadFull(r, buf)
		if !bytes.Equal(buf[:n], zeros[:n]) {
			return false, nil
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// encodeRecord lays one record out: header (body length, CRC-32C of the
// body), then the body.
func encodeRecord(conv string, seq uint64, timeNS int64, data []byte) []byte {
	return appendRecord(nil, conv, seq, timeNS, data)
}

// appendRecord appends one record's layout (encodeRecord) to dst.
func appendRecord(dst []byte, conv string, seq uint64, timeNS int64, data []byte) []byte {
	body := 2 + len(conv) + 16 + len(data)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(body))
	dst = append(dst, 0, 0, 0, 0) // the CRC, once the body is laid out
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(conv)))
	dst = append(dst, conv...)
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(timeNS))
	dst = append(dst, data...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+headerLen:], castagnoli))
	return dst
}

// maxKeptEncoding bounds the record buffer a FileStore keeps between
// appends: a rare large record does not pin its size.
const maxKeptEncoding = 64 << 10

func parseBody(b []byte) (conv string, seq uint64, ts int64, dataOff int, err error) {
	cl := int(binary.LittleEndian.Uint16(b))
	if 2+cl+16 > len(b) {
		return "", 0, 0, 0, errors.New("short record")
	}
	conv = string(b[2 : 2+cl])
	seq = binary.LittleEndian.Uint64(b[2+cl:])
	ts = int64(binary.LittleEndian.Uint64(b[2+cl+8:]))
	return conv, seq, ts, 2 + cl + 16, nil
}

func (s *FileStore) index(conv string) *convIndex {
	ci := s.convs[conv]
	if ci == nil {
		ci = &convIndex{}
		s.convs[conv] = ci
	}
	return ci
}

// add appends e to ci, with its data in memory mode (nil otherwise), and
// applies retention. Callers hold s.mu.
func (s *FileStore) add(ci *convIndex, e entry, data []byte) {
	ci.entries = append(ci.entries, e)
	if s.f == nil {
		ci.data = append(ci.data, data)
	}
	ci.bytes += int64(e.n)
	ci.last, ci.newest = e.seq, e
	s.records++
	s.trim(ci, s.opts.now().UnixNano())
}

// trim drops ci's oldest records that retention no longer keeps at nowNS.
// Callers hold s.mu.
func (s *FileStore) trim(ci *convIndex, nowNS int64) {
	drop := 0
	for drop < len(ci.entries) {
		old := ci.entries[drop]
		// Count and bytes always leave the newest record; age does not.
		over := s.expired(old, nowNS) || (drop < len(ci.entries)-1 &&
			((s.opts.MaxMessages > 0 && len(ci.entries)-drop > s.opts.MaxMessages) ||
				(s.opts.MaxBytes > 0 && ci.bytes > s.opts.MaxBytes)))
		if !over {
			break
		}
		ci.bytes -= int64(old.n)
		s.records--
		drop++
	}
	if drop == 0 {
		return
	}
	// Reslice rather than copy: at a limit every append drops a record, and
	// copying the whole index each time would make an append cost O(records kept)
	// under the store's lock. append reallocates (and so forgets the
	// dropped prefix) once the capacity runs out.
	ci.entries = dropFront(ci.entries, drop)
	if s.f == nil {
		ci.data = dropFront(ci.data, drop)
	}
}

// dropFront returns s without its first n elements, which it zeroes so
// that what they point to can go; after a large drop (three quarters of
// the capacity unused) it copies the rest to give the memory back.
func dropFront[T any](s []T, n int) []T {
	clear(s[:n])
	s = s[n:]
	if len(s) < cap(s)/4 {
		s = append([]T(nil), s...)
	}
	return s
}

// expired reports whether MaxAge has dropped e at nowNS.
func (s *FileStore) expired(e entry, nowNS int64) bool {
	return s.opts.MaxAge > 0 && nowNS-e.ts > int64(s.opts.MaxAge)
}

// expire applies MaxAge to conv before a read: without it a conversation
// that has gone quiet would serve its old records until its next append.
func (s *FileStore) expire(conv string) {
	if s.opts.MaxAge <= 0 {
		return
	}
	now := s.opts.now().UnixNano()
	s.mu.RLock()
	ci := s.convs[conv]
	stale := ci != nil && len(ci.entries) > 0 && s.expired(ci.entries[0], now)
	s.mu.RUnlock()
	if stale {
		s.mu.Lock()
		s.trim(ci, now)
		s.mu.Unlock()
	}
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

// write stores one record of conv at seq and returns the file size after
// it, for waitDurable. Callers hold s.mu for writing.
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
	if err := s.writeRecord(buf); err != nil {
		// A partial write leaves a torn record; cut it so the next append
		// starts clean, and refuse this one (the client will resend).
		// The cut takes the preallocated space with it.
		if terr := s.f.Truncate(s.size); terr != nil {
			err = errors.Join(err, terr)
		}
		if s.allocated > s.size {
			s.allocated = s.size
		}
		if _, serr := s.f.Seek(s.size, io.SeekStart); serr != nil {
			err = errors.Join(err, serr)
		}
		return 0, fmt.Errorf("room log: write: %w", err)
	}
	e.off = s.size + headerLen + int64(2+len(conv)+16)
	s.size += int64(len(buf))
	s.written++
	s.add(ci, e, nil)
	return s.size, nil
}

// ErrOutOfOrder is Put's answer to a record that does not follow its
// conversation's last one.
var ErrOutOfOrder = errors.New("record does not follow the conversation's last one")

// Put stores a record numbered elsewhere: a broker's copy of a replicated
// log (broker/cluster) keeps its local, readable view of the log in a
// FileStore this way. seq must be the conversation's last plus one, or any
// number for a conversation the store does not have yet (the replicated
// log may have trimmed its first records). It does not wait for an fsync:
// the replicated log is the durable copy.
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

// writeRecord puts buf at the end of the log (the file's offset is kept at
// size). With durability process the write alone is the guarantee: the
// bytes are in the operating system's page cache when it returns, where a
// kill -9 of the broker cannot take them. With durability machine the file
// is preallocated ahead of the records first. Called with mu held.
func (s *FileStore) writeRecord(buf []byte) error {
	if s.opts.Fsync {
		s.preallocate(s.size + int64(len(buf)))
	}
	_, err := s.f.Write(buf)
	return err
}

// preallocChunk is how far ahead of its writes a synced log extends its
// file: one size change, and so one journal commit, per chunk.
const preallocChunk = 8 << 20

// preallocate makes the file at least need bytes long, a chunk at a time,
// so the appends and fdatasyncs of durability machine do not change its
// size. The zeros past the last record are not a torn tail: recovery cuts
// them without a warning. Preallocation only saves time, so where the file
// system refuses it the log goes on without it. Called with mu held.
func (s *FileStore) preallocate(need int64) {
	if s.allocated < 0 || need <= s.allocated {
		return
	}
	chunk := s.opts.chunk
	if chunk <= 0 {
		chunk = preallocChunk
	}
	size := max(need, s.size) + chunk
	if err := allocate(s.f, size); err != nil {
		s.allocated = -1
		return
	}
	s.allocated = size
}

// Read implements Store.
func (s *FileStore) Read(conv string, after uint64, limit int) ([]Record, error) {
	s.expire(conv)
	s.mu.RLock()
	ci := s.convs[conv]
	if ci == nil || len(ci.entries) == 0 || after >= ci.last {
		s.mu.RUnlock()
		return nil, nil
	}
	first := ci.entries[0].seq
	i := 0
	if after >= first {
		i = int(after - first + 1)
	}
	j := len(ci.entries)
	if limit > 0 && j-i > limit {
		j = i + limit
	}
	es, data := s.slice(ci, i, j)
	s.mu.RUnlock()
	return s.load(es, data)
}

// Newest implements Store.
func (s *FileStore) Newest(conv string, n int) ([]Record, error) {
	s.expire(conv)
	s.mu.RLock()
	ci := s.convs[conv]
	if ci == nil || n <= 0 {
		s.mu.RUnlock()
		return nil, nil
	}
	i := max(len(ci.entries)-n, 0)
	es, data := s.slice(ci, i, len(ci.entries))
	s.mu.RUnlock()
	return s.load(es, data)
}

// slice copies ci's entries i to j-1 and, in memory mode, their data
// (nil otherwise: load reads it from the file). Callers hold s.mu.
func (s *FileStore) slice(ci *convIndex, i, j int) ([]entry, [][]byte) {
	es := append([]entry(nil), ci.entries[i:j]...)
	if s.f != nil {
		return es, nil
	}
	return es, append(make([][]byte, 0, j-i), ci.data[i:j]...)
}

// load makes records of es: with their data from data (memory mode), or
// read from the file outside s.mu (appends go on meanwhile; a written
// record does not move until Close).
func (s *FileStore) load(es []entry, data [][]byte) ([]Record, error) {
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
	out := make([]string, 0, len(s.convs))
	for conv := range s.convs {
		out = append(out, conv)
	}
	slices.Sort(out)
	return out
}

// Counts returns the number of conversations, records served and bytes on
// file. It applies MaxAge to every conversation first.
func (s *FileStore) Counts() (convs int, records int64, fileBytes int64) {
	if s.opts.MaxAge > 0 {
		now := s.opts.now().UnixNano()
		s.mu.Lock()
		for _, ci := range s.convs {
			s.trim(ci, now)
		}
		s.mu.Unlock()
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
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
		err = errors.Join(err, s.f.Truncate(s.size))
	}
	err = errors.Join(err, s.f.Sync())
	return errors.Join(err, s.f.Close())
}
