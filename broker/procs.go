package broker

import "runtime"

// setProcs pins the broker to n processors (GOMAXPROCS) when n > 0, the
// -procs flag. With 0 the broker keeps Go's default: every processor the
// machine (or the container's CPU limit) gives it, or the GOMAXPROCS
// environment variable when that is set. Pinning one processor suits a
// broker sharing a small machine with its clients (one processor turns
// the hand-offs between a publisher's and a subscriber's goroutines into
// run-queue operations instead of thread wake-ups); a broker with cores of
// its own and more messages than one core carries keeps the default.
func setProcs(n int) {
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
}
