//go:build unix

package broker

import "syscall"

// openFileLimit is the process's soft limit on open files (Go raises it to
// the hard limit at start), or 0 if it cannot be read.
func openFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur) // int64 on some systems
}
