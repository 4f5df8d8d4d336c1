//go:build linux && !race && !msan && !asan

package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Enabled reports whether Wrap and FileWriter use raw system calls: on
// Linux, outside race-detector and sanitizer builds.
const Enabled = true

// conn is a socket read and written with raw system calls; everything else
// (deadlines, Close, addresses) is the wrapped connection's.
type conn struct {
	net.Conn
	rc syscall.RawConn
}

// Wrap returns c reading and writing with raw system calls when c is a
// socket the runtime's network poller manages (a *net.TCPConn, say);
// otherwise c itself (a TLS or WebSocket connection, a net.Pipe). The
// returned connection has c's errors, deadlines and Close.
func Wrap(c net.Conn) net.Conn {
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

// ioOp is one Read's or Write's RawConn callback with its arguments and
// results; pooled with the callback bound once, so I/O allocates nothing.
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
		switch {
		case e == 0 && r == 0:
			return true // nothing taken: the caller reports a short write
		case e == 0:
			op.n += int(r)
		case e == syscall.EINTR:
		case e == syscall.EAGAIN:
			return false
		default:
			op.errno = e
			return true
		}
	}
	return true
}

// doOp runs a pooled op over p through run (a RawConn's Read or Write)
// and returns its count, its error number and run's own error; a write
// that took fewer bytes without an error number returns
// io.ErrUnexpectedEOF, as os.File's and net.Conn's Write do.
func doOp(pool *sync.Pool, p []byte, run func(func(uintptr) bool) error) (int, syscall.Errno, error) {
	op := pool.Get().(*ioOp)
	op.p, op.n, op.errno = p, 0, 0
	err := run(op.call)
	n, errno := op.n, op.errno
	op.p = nil // the pool keeps no caller's buffer
	pool.Put(op)
	if err == nil && errno == 0 && pool == &writeOps && n < len(p) {
		err = io.ErrUnexpectedEOF
	}
	return n, errno, err
}

// runOp runs a pooled op on the socket, its error wrapped as the net
// package does (replacing RawConn's "raw-read"/"raw-write" wrapping), so
// callers' checks for net.ErrClosed, os.ErrDeadlineExceeded or Timeout see
// what a plain connection gives.
func (c *conn) runOp(name string, pool *sync.Pool, p []byte, run func(func(uintptr) bool) error) (int, error) {
	n, errno, err := doOp(pool, p, run)
	if err == nil && errno != 0 {
		err = os.NewSyscallError(name, errno)
	}
	if err == nil {
		return n, nil
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok {
		err = oe.Err
	}
	return n, &net.OpError{Op: name, Net: c.LocalAddr().Network(), Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// Read reads into p once the socket has data, as net.Conn's Read does:
// io.EOF when the peer has closed its side.
func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := c.runOp("read", &readOps, p, c.rc.Read)
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of p, waiting for the socket to take more as often as
// it takes, as net.Conn's Write does: fewer bytes only with an error.
func (c *conn) Write(p []byte) (int, error) { return c.runOp("write", &writeOps, p, c.rc.Write) }

// fileWriter writes a regular file with raw write calls.
type fileWriter struct {
	f  *os.File
	rc syscall.RawConn
}

// FileWriter returns a writer that writes f at its offset with raw system
// calls; f itself when f gives no RawConn.
func FileWriter(f *os.File) io.Writer {
	rc, err := f.SyscallConn()
	if err != nil {
		return f
	}
	return &fileWriter{f: f, rc: rc}
}

// Write writes all of p, as os.File's Write does: fewer bytes only with an
// error (a full disk, say), which names the file.
func (w *fileWriter) Write(p []byte) (int, error) {
	n, errno, err := doOp(&writeOps, p, w.rc.Write)
	if err == nil && errno != 0 {
		err = &os.PathError{Op: "write", Path: w.f.Name(), Err: errno}
	}
	return n, err
}
