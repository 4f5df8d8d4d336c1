//go:build !linux || race || msan || asan

package rawsock

import "net"

// Enabled reports whether Wrap uses raw system calls: not on this build.
const Enabled = false

func wrap(c net.Conn) net.Conn { return c }
