// Package mqttconn is the chat node's network connection under paho: it
// reads through a buffer and coalesces writes, because paho reads each
// packet in several small reads and writes each packet (every PUBACK too)
// with a system call of its own, a large share of a busy node's CPU. A
// write to an idle connection goes out at once; only what arrives during a
// write waits, to go out together in the next one.
package mqttconn

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/distchat/distchat/broker/ackhold"
)

// MaxPending bounds the bytes waiting to be written: Write blocks while
// this much is pending (backpressure, as a socket's full send buffer does).
const MaxPending = 1 << 20

// AckDelay is how long Open's connections hold a PUBACK back to go out
// with other bytes. A PUBACK only lets the broker forget a message the
// node already has, so holding it costs no delivery latency, and at a
// thousand deliveries a second it makes about five acknowledgements one
// write. Which writes wait, and how many, is package ackhold's rule.
const AckDelay = 5 * time.Millisecond

const (
	readBuffer        = 32 << 10    // several small MQTT packets per read
	closeFlushTimeout = time.Second // how long Close waits to write what is pending
)

// Conn wraps a net.Conn: Read goes through a buffer (one reader at a time,
// as paho reads), Write copies into a pending buffer that one flusher
// goroutine writes out; a write error comes back from the next Write and
// from Close. A write deadline applies to the flusher's next write, set by
// the flusher itself, because a WebSocket connection refuses it during a
// write.
type Conn struct {
	net.Conn
	r    *bufio.Reader
	wake chan struct{} // a token: there is something to write
	quit chan struct{} // closed by Close
	done chan struct{} // closed when the flusher has stopped

	// mu guards the fields from space to ackTimer; no other lock is taken
	// under it, and it is never held across a write to the network.
	mu          sync.Mutex
	space       *sync.Cond // signalled when pending shrinks or err is set
	pending     []byte
	spare       []byte
	err         error
	closed      bool
	deadline    time.Time // for the flusher's next write
	newDeadline bool      // deadline changed since the flusher last set it
	heldAcks    int       // PUBACKs in pending the flusher has not been woken for
	ackTimer    stopper   // armed while heldAcks > 0; nil otherwise

	ackDelay  time.Duration                       // how long a PUBACK may be held (0: never)
	afterFunc func(time.Duration, func()) stopper // time.AfterFunc; tests fire the timer themselves
}

// stopper is the part of *time.Timer a Conn uses.
type stopper interface{ Stop() bool }

// WrapHoldingAcks returns c with buffered reads and coalesced writes,
// PUBACKs held back up to ackDelay (0: never) to go out with other bytes
// (see AckDelay). Close the returned Conn, not c.
func WrapHoldingAcks(c net.Conn, ackDelay time.Duration) *Conn {
	return wrap(c, ackDelay, func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) })
}

func wrap(c net.Conn, ackDelay time.Duration, afterFunc func(time.Duration, func()) stopper) *Conn {
	w := &Conn{
		Conn: c, r: bufio.NewReaderSize(c, readBuffer),
		wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}),
		ackDelay: ackDelay, afterFunc: afterFunc,
	}
	w.space = sync.NewCond(&w.mu)
	go w.flusher()
	return w
}

// Read reads through the buffer.
func (c *Conn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write queues p for the flusher. It blocks only while MaxPending bytes
// are already waiting.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	for c.err == nil && !c.closed && len(c.pending) > 0 && len(c.pending)+len(p) > MaxPending {
		c.space.Wait()
	}
	switch {
	case c.err != nil:
		err := c.err
		c.mu.Unlock()
		return 0, err
	case c.closed:
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	c.pending = append(c.pending, p...)
	if c.holdAck(p) {
		c.mu.Unlock()
		return len(p), nil
	}
	c.releaseHeldAcks()
	c.mu.Unlock()
	c.kick()
	return len(p), nil
}

// kick wakes the flusher.
func (c *Conn) kick() {
	select {
	case c.wake <- struct{}{}:
	default: // the flusher is awake already and takes these bytes too
	}
}

// holdAck reports whether p, just added to pending, is a PUBACK that may
// wait for the ack timer or for other bytes. Called with mu held.
func (c *Conn) holdAck(p []byte) bool {
	if c.ackDelay <= 0 || !ackhold.IsPuback(p) || c.heldAcks+1 >= ackhold.Max {
		return false
	}
	c.heldAcks++
	if c.ackTimer == nil {
		c.ackTimer = c.afterFunc(c.ackDelay, c.ackTimerFired)
	}
	return true
}

// releaseHeldAcks forgets the held PUBACKs: the bytes pending go out now.
// Called with mu held.
func (c *Conn) releaseHeldAcks() {
	c.heldAcks = 0
	if c.ackTimer != nil {
		c.ackTimer.Stop()
		c.ackTimer = nil
	}
}

// ackTimerFired sends the held PUBACKs.
func (c *Conn) ackTimerFired() {
	c.mu.Lock()
	c.releaseHeldAcks()
	c.mu.Unlock()
	c.kick()
}

// flusher writes whatever is pending, in one write each time, until Close.
func (c *Conn) flusher() {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
			if !c.writePending() {
				return
			}
		case <-c.quit:
			c.writePending()
			return
		}
	}
}

// writePending writes everything pending; false after a failed write.
func (c *Conn) writePending() bool {
	for {
		c.mu.Lock()
		batch := c.pending
		if len(batch) == 0 || c.err != nil {
			ok := c.err == nil
			c.mu.Unlock()
			return ok
		}
		c.pending, c.spare = c.spare[:0], nil
		c.releaseHeldAcks() // they go out in this batch
		deadline, setDeadline := c.deadline, c.newDeadline
		c.newDeadline = false
		c.space.Broadcast()
		c.mu.Unlock()
		var err error
		if setDeadline {
			err = c.Conn.SetWriteDeadline(deadline)
		}
		if err == nil {
			_, err = c.Conn.Write(batch)
		}
		c.mu.Lock()
		if cap(batch) <= 64<<10 {
			c.spare = batch[:0] // reused: no allocation per batch
		}
		if err != nil {
			c.err = fmt.Errorf("write: %w", err)
			c.space.Broadcast()
		}
		c.mu.Unlock()
		if err != nil {
			return false
		}
	}
}

// SetWriteDeadline sets the deadline of the flusher's writes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline, c.newDeadline = t, true
	return nil
}

// SetDeadline sets the read deadline and the flusher's write deadline.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// Close writes what is pending (bounded by closeFlushTimeout), then closes
// the connection. It reports the connection's write error, if any.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return net.ErrClosed
	}
	c.closed = true
	c.deadline, c.newDeadline = time.Now().Add(closeFlushTimeout), true
	c.space.Broadcast()
	c.mu.Unlock()
	close(c.quit)
	t := time.NewTimer(closeFlushTimeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C: // a write begun before Close is stuck: closing the connection ends it
	}
	cerr := c.Conn.Close()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(cerr, c.err)
}
