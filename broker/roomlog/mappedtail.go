package roomlog

import (
	"fmt"
	"runtime/debug"
)

// The mapped tail (durability process). An append with durability
// process must reach the operating system before its PUBACK, so that a
// kill -9 of the broker cannot take it; a write system call per record does
// that, and on a loaded broker it was about a tenth of the CPU per message.
// A shared memory mapping of the file does it with no system call: bytes
// copied into a MAP_SHARED mapping are in the page cache at once, as a
// write's are, and survive the process. So the log preallocates its file a
// chunk ahead (as it does for durability machine) and maps the part past
// its last record; an append copies its record there. Only a power loss can
// take such bytes, as it can take written ones without an fsync.
//
// Durability machine keeps write and fdatasync: its fsync dominates the
// append, and after each flush the kernel write-protects the flushed pages,
// so the next copy into each would fault. Where mapping is not available
// (other systems, preallocation or mmap refused) appends go back to writes.
//
// The first copy into each page of the mapping faults (the kernel maps the
// page and marks it dirty): one fault per 4 KiB, a dozen chat records, and
// under virtualisation each costs microseconds of kernel work; a profile of
// the broker under the one-pair load put them at 3 to 4 % of its CPU. So the
// log asks the kernel to fault the pages in for writing a window at a time
// ahead of the records (MADV_POPULATE_WRITE, Linux 5.14 and later): one
// system call per prefaultWindow instead of a fault per page. Where the
// kernel refuses, the pages fault one by one as they are written.

// prefaultWindow is how far ahead of its records the log has the pages of
// its mapped tail faulted in: one system call per window (about 0.2 ms for
// 256 KiB here), so no append waits long for one.
const prefaultWindow = 256 << 10

// tailMapping is a shared, writable mapping of the file range [off,
// off+len(data)); FileStore.mu guards it.
type tailMapping struct {
	off  int64
	data []byte
	// prefaulted is the file offset up to which the mapping's pages are
	// faulted in for writing; noPrefault is set once the kernel refused.
	prefaulted int64
	noPrefault bool
}

// prefault has the mapping's pages faulted in for writing from where the
// last window ended to a window past the file offset to, when to passes
// the last window's end.
func (m *tailMapping) prefault(to int64) {
	if m.noPrefault || to <= m.prefaulted {
		return
	}
	start := max(m.prefaulted, m.off) // page-aligned: off is, and so is every window's end but the mapping's
	end := (max(start, to) + prefaultWindow + int64(pageSize) - 1) &^ int64(pageSize-1)
	end = min(end, m.off+int64(len(m.data)))
	if start >= end {
		return
	}
	if err := populateWrite(m.data[start-m.off : end-m.off]); err != nil {
		m.noPrefault = true // an older kernel: the pages fault as they are written
		return
	}
	m.prefaulted = end
}

// covers reports whether the mapping holds the file range [from, to).
func (m *tailMapping) covers(from, to int64) bool {
	return m.data != nil && from >= m.off && to <= m.off+int64(len(m.data))
}

// writeRecord puts buf at the end of the log (at offset size): into the
// mapped tail with durability process where it can, else with a write at
// the file's offset (which recover and the write error path keep at size;
// a copy into the mapping leaves it behind, so a mapped log that can no
// longer map writes at size instead). Called with mu held.
func (s *FileStore) writeRecord(buf []byte) error {
	end := s.size + int64(len(buf))
	if s.opts.Fsync {
		s.preallocate(end)
		_, err := s.f.Write(buf)
		return err
	}
	if s.mapTail(end) {
		s.tail.prefault(end)
		return copyMapped(s.tail.data[s.size-s.tail.off:], buf)
	}
	_, err := s.f.WriteAt(buf, s.size)
	return err
}

// mapTail makes the mapping cover the file up to end, preallocating and
// remapping a chunk ahead when it does not; false when the log cannot be
// mapped (it then writes). Called with mu held.
func (s *FileStore) mapTail(end int64) bool {
	if s.tail.covers(s.size, end) {
		return true
	}
	if s.noMapping {
		return false
	}
	if err := s.unmapTail(); err != nil {
		s.noMapping = true
		return false
	}
	s.preallocate(end)
	if s.allocated < end {
		s.noMapping = true
		return false
	}
	off := s.size &^ int64(pageSize-1)
	data, err := mapFile(s.f, off, int(s.allocated-off))
	if err != nil {
		s.noMapping = true
		return false
	}
	s.tail = tailMapping{off: off, data: data}
	return true
}

// unmapTail drops the mapping, if any: before the file is cut or closed.
// Called with mu held.
func (s *FileStore) unmapTail() error {
	if s.tail.data == nil {
		return nil
	}
	data := s.tail.data
	s.tail = tailMapping{}
	if err := unmapFile(data); err != nil {
		return fmt.Errorf("room log: unmap: %w", err)
	}
	return nil
}

// copyMapped copies src into the mapping at dst. A fault (the file cut
// under the mapping by someone else, an I/O error on a page) fails the
// append instead of crashing the broker.
func copyMapped(dst, src []byte) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("room log: write to the mapped file: %v", r)
		}
	}()
	copy(dst, src)
	return nil
}
