// Package rawsock reads and writes TCP connections with raw system calls,
// which leave the Go scheduler out of each read and write.
//
// Why: a program that waits for the network most of the time (a chat node
// at a thousand deliveries a second, a broker between packets) has all its
// processors idle between packets, and then the runtime's monitor thread
// (sysmon) sleeps until something wakes it. Every ordinary system call
// wakes it (the runtime's entersyscall), and once woken it looks again
// every 20 µs until it finds the processors idle: on this workload,
// several thread switches per packet and about a third of a chat node's CPU.
// A socket the runtime's poller manages is non-blocking, so its read and
// write calls never block and need none of that bookkeeping: Conn makes
// them with syscall.RawSyscall inside the connection's RawConn, which still
// waits for readiness, deadlines and Close through the poller.
//
// Where the raw calls are not available (not Linux) or would hide reads
// and writes from a checker (race-detector builds, whose happens-before
// tracking of I/O lives in the ordinary calls, and memory or address
// sanitizer builds, which learn there what the kernel wrote), Wrap returns
// the connection unchanged.
package rawsock

import "net"

// Wrap returns c reading and writing with raw system calls when c is a
// socket the runtime's network poller manages (a *net.TCPConn, say) and
// raw calls are Enabled; otherwise c itself (a TLS or WebSocket
// connection, a net.Pipe). The returned connection behaves as c does:
// the same errors, deadlines and Close.
func Wrap(c net.Conn) net.Conn {
	if !Enabled {
		return c
	}
	return wrap(c)
}

// Listener wraps the connections its Listener accepts with Wrap.
type Listener struct{ net.Listener }

// Accept returns the next connection, wrapped.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
