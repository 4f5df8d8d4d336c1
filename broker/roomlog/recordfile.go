package roomlog

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/distchat/distchat/broker/rawio"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const headerLen = 8

// maxRecord bounds one record: a corrupt length allocates no gigabytes.
const maxRecord = 16 << 20

// recover rebuilds the index and cuts a torn or corrupt tail off the file.
func (s *FileStore) recover() error {
	r := bufio.NewReaderSize(s.f, 1<<20)
	var off int64
	hdr := make([]byte, headerLen)
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			break // the end, or a torn header
		}
		n := binary.LittleEndian.Uint32(hdr)
		if n < 18 || n > maxRecord {
			break
		}
		body = slices.Grow(body[:0], int(n))[:n]
		if _, err := io.ReadFull(r, body); err != nil || crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
			break // a torn or corrupt body
		}
		conv, seq, ts, dataOff, err := parseBody(body)
		if err != nil {
			break
		}
		ci := s.index(conv)
		// Consecutive, from any number: compaction may have left only the newest.
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

// zeroTail reports whether f is all zeros from off to end, 64 KiB at a
// time: after a crash the preallocated tail is up to 8 MiB of them.
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

// appendRecord appends one record to dst (layout: see FileStore).
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

// maxKeptEncoding bounds the record buffer kept between appends.
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

const (
	// Open compacts a file of compactMin bytes or more, less than half kept.
	compactMin    = 1 << 20
	compactSuffix = ".compact"
)

// keptBytes is the file's size after compaction: what retention keeps, and each newest.
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

// compact rewrites the log with what keptBytes counts (the newest record
// keeps Last) into a synced file renamed over it: a crash leaves either
// whole. An error before the rename leaves the store as it was; after it
// (renamed), the store cannot go on. Callers own s (Open).
func (s *FileStore) compact() (renamed bool, err error) {
	tmpPath := s.path + compactSuffix
	err = s.writeCompacted(tmpPath)
	if err == nil {
		err = os.Rename(tmpPath, s.path)
	}
	if err != nil {
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
	s.f, s.out, s.convs, s.records = f, rawio.FileWriter(f), map[string]*convIndex{}, 0
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
	var buf []byte
	for _, conv := range slices.Sorted(maps.Keys(s.convs)) {
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
			buf = appendRecord(buf[:0], conv, e.seq, e.ts, data)
			if _, err := w.Write(buf); err != nil {
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
