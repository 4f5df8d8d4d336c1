package roomlog

import (
	"os"
	"syscall"
)

// datasync makes the log's written data durable with fdatasync: the file's
// size only changes when preallocate extends it, so each group commit
// flushes data blocks without an inode update in the file system's journal
// (measured here: about a quarter of an append-and-fsync's time).
func datasync(f *os.File) error { return control(f, syscall.Fdatasync) }

// allocate extends f to size bytes of zeros without writing them.
func allocate(f *os.File, size int64) error {
	return control(f, func(fd int) error { return syscall.Fallocate(fd, 0, 0, size) })
}

// control runs op on f's file descriptor.
func control(f *os.File, op func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var operr error
	if err := rc.Control(func(fd uintptr) { operr = op(int(fd)) }); err != nil {
		return err
	}
	return operr
}
