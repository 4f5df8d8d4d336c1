// Package syncbuf is a bytes.Buffer that several goroutines may write while
// a test reads it: what a node under test writes its screen and log to.
// Tests of the node, its session, its web server and its log formatting
// share it, as net/http/httptest serves tests of HTTP code.
package syncbuf

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent use. Each Write is kept
// whole and in order.
type Buffer struct {
	mu  sync.Mutex // guards buf; a leaf lock, held for no I/O
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Take returns everything written so far and empties the buffer.
func (b *Buffer) Take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	b.buf.Reset()
	return s
}
