package roomlog

import (
	"os"
	"syscall"
)

// datasync makes the log's data durable with fdatasync: the size changes only
// when preallocate extends it, so a group commit skips the inode update in the
// journal (measured: about a quarter of an append-and-fsync's time).
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
