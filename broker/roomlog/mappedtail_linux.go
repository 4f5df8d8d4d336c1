package roomlog

import (
	"os"
	"syscall"
)

var pageSize = os.Getpagesize()

// mapFile maps length bytes of f from off (a multiple of the page size),
// shared and writable: what is copied there is in the page cache at once.
func mapFile(f *os.File, off int64, length int) ([]byte, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var data []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		data, merr = syscall.Mmap(int(fd), off, length, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	}); err != nil {
		return nil, err
	}
	return data, merr
}

// unmapFile ends a mapping of mapFile.
func unmapFile(data []byte) error { return syscall.Munmap(data) }

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14), which the syscall
// package does not name.
const madvPopulateWrite = 23

// populateWrite faults the pages of b, part of a mapping of mapFile, in
// for writing.
func populateWrite(b []byte) error { return syscall.Madvise(b, madvPopulateWrite) }
