// Package rawio makes the hot path's reads and writes (an MQTT connection's
// socket, the room log's file) with raw system calls, which leave the Go
// scheduler out of each call.
//
// An ordinary system call (entersyscall) wakes the runtime's monitor thread
// (sysmon) when it sleeps, and sysmon then polls every 20 µs until the
// processors are idle again. A broker or node that handles one packet at a
// time goes idle between packets, so each packet wakes sysmon again: about
// two thread switches more per message. Only when no ordinary call is left
// on the path does sysmon stay asleep, so the gain comes from all of them
// together: the broker's socket calls alone, or the room log's write alone,
// change nothing measurable.
//
// Wrap gives a socket raw read and write calls made inside its RawConn,
// which still waits for readiness, deadlines and Close through the
// runtime's poller; FileWriter gives a regular file a raw write. A raw call
// keeps its processor for as long as the kernel takes: a socket's never
// blocks (the poller keeps it non-blocking), but a file write the kernel
// throttles (too many dirty pages) holds the processor meanwhile, where an
// ordinary call would have let the runtime hand it to other goroutines.
//
// Off Linux, and in race-detector and sanitizer builds (which track I/O
// through the ordinary calls), Wrap returns the connection unchanged and
// FileWriter the file itself.
//
// docs/benchmarks.md ("Mechanisms") has the measurement and the commands
// that repeat it: brokers and nodes built with and without this package,
// run alternately under bench-compare and make bench-nodes. bench-compare
// reports each broker's context switches per delivery, which show it.
// BenchmarkWriteRead measures only the call: the saving is in the idle
// process's wake-ups, which a benchmark that never idles does not show.
package rawio
