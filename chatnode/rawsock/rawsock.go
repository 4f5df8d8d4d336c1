// Package rawsock reads and writes a chat node's TCP connection with raw
// system calls, which leave the Go scheduler out of each read and write.
//
// An ordinary system call wakes the runtime's monitor thread (sysmon),
// which then polls every 20 µs until the processors are idle again: for a
// node idle between packets, several thread switches per packet and about
// a third of its CPU. The runtime's poller keeps the socket non-blocking,
// so its reads and writes need none of that bookkeeping; Wrap makes them
// with syscall.RawSyscall inside the connection's RawConn, which still
// waits for readiness, deadlines and Close through the poller.
//
// Off Linux, and in race-detector and sanitizer builds (which track I/O
// through the ordinary calls), Wrap returns the connection unchanged.
//
// docs/benchmarks.md ("Mechanisms") has the measurement: build chatnode
// with and without Wrap in mqttconn.Open and run make bench-nodes (or
// bench-compare -loads chat-3x333 -bin DIR) with each, alternately.
// BenchmarkWriteRead measures only the call: the saving is in the idle
// process's wake-ups, which a benchmark that never idles does not show.
package rawsock
