package broker

import "runtime"

// setProcs pins the broker to n processors (GOMAXPROCS, the -procs flag)
// when n > 0; 0 keeps Go's default. One processor suits a broker sharing a
// small machine with its clients: hand-offs between a publisher's and a
// subscriber's goroutines become run-queue operations, not thread wake-ups.
func setProcs(n int) {
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
}
