package jsonlog

// Writer batches a log's lines into few writes: a chat node writes a line
// per delivered message, and one write system call per line was a large
// share of its CPU. Lines are kept in memory for at most the flush interval
// (or until the buffer holds FlushBytes) and written in one call; Close
// writes what is left. A process killed without Close (kill -9) loses at
// most the last interval of lines.

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// FlushBytes is how much a Writer holds before it writes at once, whatever
// the interval: it bounds the memory and the size of one write.
const FlushBytes = 256 << 10

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("log writer closed")

// Writer is an io.Writer that batches writes to another writer. It is safe
// for concurrent use; lines are written in the order Write received them.
type Writer struct {
	w    io.Writer
	quit chan struct{}
	done chan struct{}

	// flushMu is held while a batch is written to w, so batches keep their
	// order. Lock order: flushMu, then mu.
	flushMu sync.Mutex
	spare   []byte // the buffer of the previous batch, reused; guarded by flushMu

	// mu guards buf, err and closed. It is never held across a write to w.
	mu     sync.Mutex
	buf    []byte
	err    error // the first failed write to w, reported by Write and Close
	closed bool
}

// NewWriter returns a Writer flushing to w every interval (and at FlushBytes).
func NewWriter(w io.Writer, interval time.Duration) *Writer {
	t := time.NewTicker(interval)
	bw := newWriter(w, t.C)
	go func() {
		<-bw.done
		t.Stop()
	}()
	return bw
}

// newWriter flushes on every tick (tests drive the ticks).
func newWriter(w io.Writer, tick <-chan time.Time) *Writer {
	bw := &Writer{w: w, quit: make(chan struct{}), done: make(chan struct{}), buf: make([]byte, 0, 64<<10)}
	go bw.loop(tick)
	return bw
}

func (bw *Writer) loop(tick <-chan time.Time) {
	defer close(bw.done)
	for {
		select {
		case <-tick:
			bw.flush()
		case <-bw.quit:
			return
		}
	}
}

// ConcurrentWrites marks a Writer as safe for whole lines written from
// several goroutines at once (jsonlog.ConcurrentWriter).
func (bw *Writer) ConcurrentWrites() {}

// Write appends p to the batch. It fails once a write to the underlying
// writer has failed, or after Close.
func (bw *Writer) Write(p []byte) (int, error) {
	bw.mu.Lock()
	if bw.closed {
		bw.mu.Unlock()
		return 0, ErrClosed
	}
	if err := bw.err; err != nil {
		bw.mu.Unlock()
		return 0, err
	}
	bw.buf = append(bw.buf, p...)
	full := len(bw.buf) >= FlushBytes
	bw.mu.Unlock()
	if full {
		bw.flush()
	}
	return len(p), nil
}

// Flush writes the batch now.
func (bw *Writer) Flush() error {
	bw.flush()
	bw.mu.Lock()
	defer bw.mu.Unlock()
	return bw.err
}

func (bw *Writer) flush() {
	bw.flushMu.Lock()
	defer bw.flushMu.Unlock()
	bw.mu.Lock()
	batch := bw.buf
	bw.buf = bw.spare[:0]
	failed := bw.err != nil
	bw.mu.Unlock()
	if len(batch) == 0 || failed {
		bw.spare = batch
		return
	}
	_, err := bw.w.Write(batch)
	bw.spare = batch
	if cap(bw.spare) > 4*FlushBytes {
		bw.spare = nil // after a burst, do not keep a huge buffer
	}
	if err != nil {
		bw.mu.Lock()
		bw.err = fmt.Errorf("write log: %w", err)
		bw.mu.Unlock()
	}
}

// Close writes what is left and stops the flushing; it does not close the
// underlying writer. It reports the first write error, if any.
func (bw *Writer) Close() error {
	bw.mu.Lock()
	if bw.closed {
		bw.mu.Unlock()
		return nil
	}
	bw.closed = true
	bw.mu.Unlock()
	close(bw.quit)
	<-bw.done
	return bw.Flush()
}
