package jsonlog

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

// Writer batches a log's lines into few writes to another writer: a node
// writes a line per delivered message, and a system call per line costs
// much of its CPU. Lines wait at most the flush interval (or until
// FlushBytes), so a kill -9 loses at most that; Close writes the rest. It
// is safe for concurrent use and keeps the order of the Writes.
type Writer struct {
	w    io.Writer
	quit chan struct{}
	done chan struct{}

	// flushMu is held while a batch is written to w, so batches keep their
	// order. Lock order: flushMu, then mu.
	flushMu sync.Mutex
	spare   []byte // the buffer of the previous batch, reused; guarded by flushMu

	mu     sync.Mutex // guards buf, err and closed; never held across a write to w
	buf    []byte
	err    error // the first failed write to w, reported by Write and Close
	closed bool
}

// NewWriter returns a Writer flushing to w every interval (and at FlushBytes).
func NewWriter(w io.Writer, interval time.Duration) *Writer {
	t := time.NewTicker(interval)
	return newWriter(w, t.C, t.Stop)
}

// newWriter flushes on every tick (tests drive the ticks) until Close,
// then calls stop.
func newWriter(w io.Writer, tick <-chan time.Time, stop func()) *Writer {
	bw := &Writer{w: w, quit: make(chan struct{}), done: make(chan struct{}), buf: make([]byte, 0, 64<<10)}
	go func() {
		defer close(bw.done)
		defer stop()
		for {
			select {
			case <-tick:
				bw.Flush()
			case <-bw.quit:
				return
			}
		}
	}()
	return bw
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
		bw.Flush()
	}
	return len(p), nil
}

// Flush writes the batch now and reports the first write error, if any.
func (bw *Writer) Flush() error {
	bw.flushMu.Lock()
	defer bw.flushMu.Unlock()
	bw.mu.Lock()
	batch, err := bw.buf, bw.err
	bw.buf = bw.spare[:0]
	bw.mu.Unlock()
	bw.spare = batch
	if len(batch) == 0 || err != nil {
		return err
	}
	if _, err = bw.w.Write(batch); err != nil {
		err = fmt.Errorf("write log: %w", err)
		bw.mu.Lock()
		bw.err = err
		bw.mu.Unlock()
	}
	if cap(bw.spare) > 4*FlushBytes {
		bw.spare = nil // after a burst, do not keep a huge buffer
	}
	return err
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
