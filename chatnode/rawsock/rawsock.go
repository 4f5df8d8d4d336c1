// Package rawsock reads and writes a chat node's TCP connection with raw
// system calls, which leave the Go scheduler out of each read and write.
//
// Why: a chat node waits for the network most of the time and has all its
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
//
// What it buys: chat nodes spend less CPU per delivery with it than with
// Go's ordinary calls (docs/benchmarks.md, "Mechanisms": bench-compare's
// chat-3x333 and make bench-nodes, with and without it, alternately). How
// to measure it again: build chatnode with and without Wrap in
// mqttconn.Open and run make bench-nodes (or bench-compare -loads
// chat-3x333 -bin DIR) with each, in turn, three rounds or more. A
// benchmark that never idles does not show the gain (BenchmarkWriteRead
// measures the call itself): the saving is in the idle process's wake-ups.
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
