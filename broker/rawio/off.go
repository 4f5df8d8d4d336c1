//go:build !linux || race || msan || asan

package rawio

import (
	"io"
	"net"
	"os"
)

// Enabled reports whether Wrap and FileWriter use raw system calls: not on
// this build.
const Enabled = false

// Wrap returns c: raw system calls are not Enabled on this build.
func Wrap(c net.Conn) net.Conn { return c }

// FileWriter returns f: raw system calls are not Enabled on this build.
func FileWriter(f *os.File) io.Writer { return f }
