//go:build linux && !race && !msan && !asan

package rawsock

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Enabled reports whether Wrap uses raw system calls: on Linux, outside
// race-detector and sanitizer builds.
const Enabled = true

// conn is a socket read and written with raw system calls; everything else
// (deadlines, Close, addresses) is the wrapped connection's.
type conn struct {
	net.Conn
	rc syscall.RawConn
}

func wrap(c net.Conn) net.Conn {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return c
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return c
	}
	return &conn{Conn: c, rc: rc}
}

// ioOp is one Read's or Write's callback for the RawConn, with its
// arguments and results. Ops are reused through readOps and writeOps, with
// their callbacks bound once, so that a read or write allocates nothing.
type ioOp struct {
	p     []byte
	n     int
	errno syscall.Errno
	call  func(fd uintptr) bool // the op's read or write, bound once
}

var (
	readOps  = sync.Pool{New: func() any { op := new(ioOp); op.call = op.read; return op }}
	writeOps = sync.Pool{New: func() any { op := new(ioOp); op.call = op.write; return op }}
)

// read reads once into p; false (wait until readable) on EAGAIN.
func (op *ioOp) read(fd uintptr) bool {
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&op.p[0])), uintptr(len(op.p)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		op.n, op.errno = int(r), e
		return true
	}
}

// write writes the rest of p; false (wait until writable) on EAGAIN.
func (op *ioOp) write(fd uintptr) bool {
	for op.n < len(op.p) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&op.p[op.n])), uintptr(len(op.p)-op.n))
		switch e {
		case 0:
			op.n += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			op.errno = e
			return true
		}
	}
	return true
}

// runOp runs an op from pool over p through run (the RawConn's Read or
// Write) and returns its count, errno and error.
func runOp(pool *sync.Pool, p []byte, run func(func(uintptr) bool) error) (int, syscall.Errno, error) {
	op := pool.Get().(*ioOp)
	op.p, op.n, op.errno = p, 0, 0
	err := run(op.call)
	n, errno := op.n, op.errno
	op.p = nil // the pool keeps no caller's buffer
	pool.Put(op)
	return n, errno, err
}

// Read reads into p once the socket has data, as net.Conn's Read does:
// io.EOF when the peer has closed its side.
func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno, err := runOp(&readOps, p, c.rc.Read)
	if err == nil && errno != 0 {
		err = os.NewSyscallError("read", errno)
	}
	if err != nil {
		return 0, c.opError("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, waiting for the socket to take more as often as
// it takes, as net.Conn's Write does: fewer bytes only with an error.
func (c *conn) Write(p []byte) (int, error) {
	n, errno, err := runOp(&writeOps, p, c.rc.Write)
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	if err != nil {
		return n, c.opError("write", err)
	}
	return n, nil
}

// opError wraps err as the net package does, so callers' checks
// (errors.Is(err, net.ErrClosed), os.ErrDeadlineExceeded, net.Error's
// Timeout) see what they would see without the wrapper. RawConn's own
// errors come wrapped as "raw-read" or "raw-write"; the wrapping is
// replaced.
func (c *conn) opError(op string, err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
