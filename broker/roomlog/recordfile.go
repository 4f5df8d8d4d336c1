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
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const headerLen = 8

// maxRecord bounds one record, so a corrupt length cannot make recovery
// allocate gigabytes.
const maxRecord = 16 << 20

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
