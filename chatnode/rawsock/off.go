//go:build !linux || race || msan || asan

package rawsock

import "net"

// Enabled reports whether Wrap uses raw system calls: not on this build.
const Enabled = false

// Wrap returns c: raw system calls are not Enabled on this build.
func Wrap(c net.Conn) net.Conn { return c }
