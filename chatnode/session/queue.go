package session

import "sync"

// inbound is one message as paho handed it over, with its receive time
// stamped before anything else happened to it.
type inbound struct {
	topic    string
	payload  []byte
	retained bool
	recvNS   int64
}

// queue is an unbounded FIFO between paho's handler goroutines and the
// session's single pipeline goroutine. Unbounded on purpose: the handler must
// never block (paho PUBACKs only after it returns, and a blocked handler
// stalls the connection until the broker drops it), and memory is bounded in
// practice by the broker's in-flight quota per client.
type queue struct {
	mu    sync.Mutex // guards items and spare; a leaf lock, held for no I/O
	items []inbound
	// spare is a drained batch handed back (recycle), the next items: a
	// push into an emptied queue allocates nothing.
	spare []inbound
	ready chan struct{}
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

// push appends m and wakes the consumer; it never blocks.
func (q *queue) push(m inbound) {
	q.mu.Lock()
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// drain takes everything queued so far. Hand the batch back with recycle
// once it is handled.
func (q *queue) drain() []inbound {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items, q.spare = q.spare[:0], nil
	return out
}

// maxSpare bounds the capacity of a batch kept for reuse.
const maxSpare = 4096

// recycle takes back a handled batch from drain for reuse.
func (q *queue) recycle(batch []inbound) {
	if cap(batch) == 0 || cap(batch) > maxSpare {
		return
	}
	clear(batch) // drops the payloads for the collector
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.spare == nil {
		q.spare = batch[:0]
	}
}
