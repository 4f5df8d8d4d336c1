package session

import "sync"

// inbound is one message as paho handed it over, stamped on receipt.
type inbound struct {
	topic    string
	payload  []byte
	retained bool
	recvNS   int64
}

// queue is an unbounded FIFO from paho's handlers to the pipeline goroutine.
// Unbounded because a blocked handler stalls the connection until the
// broker drops it; the broker's in-flight quota bounds it in practice.
type queue struct {
	mu    sync.Mutex // guards items and spare; a leaf lock, held for no I/O
	items []inbound
	spare []inbound // a batch handed back (recycle) to become the next items
	ready chan struct{}
}

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

// drain takes everything queued so far, for recycle once handled.
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
