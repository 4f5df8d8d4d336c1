package cluster

import (
	"fmt"
	"sync"
	"time"
)

// One broker's appends to a conversation go through a queue with one
// leader at a time. An append expects the conversation's last record, so
// two appends of this broker racing for the same room_seq would make one
// of them retry for nothing; and each append is a round of agreement in
// the cluster, so a room busier than one round at a time would queue
// behind it. So the first append of a conversation with no leader becomes
// its leader: it takes every append waiting (up to maxBatch, its own
// first), stores them as one atomic batch with consecutive room_seqs (one
// round of agreement for all, appendBatch), hands each its result, and
// hands the lead to the oldest append still waiting, if any: no publisher
// waits for more than its own batch. An append that waited longer than the
// append timeout before a leader took it fails unsent.

// maxBatch bounds the records of one atomic batch (JetStream allows 1,000).
const maxBatch = 64

// pendingAppend is one append waiting in its conversation's queue.
type pendingAppend struct {
	timeNS   int64
	encode   func(seq uint64) ([]byte, error)
	enqueued time.Time
	done     chan appendResult // buffered: the leader never waits on it
}

// appendResult is what an append returns, or (lead) that it is to lead.
type appendResult struct {
	seq  uint64
	err  error
	lead bool
}

// appendQueues holds each conversation's waiting appends.
type appendQueues struct {
	mu      sync.Mutex // guards waiting and leading; taken after no other lock, never held while waiting
	waiting map[string][]*pendingAppend
	leading map[string]bool // a leader is appending for the conversation
}

// enqueue adds p to conv's queue and reports whether the caller is to
// lead (no leader is appending for conv).
func (q *appendQueues) enqueue(conv string, p *pendingAppend) (lead bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waiting == nil {
		q.waiting, q.leading = map[string][]*pendingAppend{}, map[string]bool{}
	}
	q.waiting[conv] = append(q.waiting[conv], p)
	if q.leading[conv] {
		return false
	}
	q.leading[conv] = true
	return true
}

// next takes up to maxBatch of conv's waiting appends, oldest first (the
// leader's own among them: it waits first).
func (q *appendQueues) next(conv string) []*pendingAppend {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.waiting[conv]
	n := min(len(w), maxBatch)
	batch := append([]*pendingAppend(nil), w[:n]...)
	clear(w[:n])
	if n == len(w) {
		delete(q.waiting, conv)
	} else {
		q.waiting[conv] = w[n:]
	}
	return batch
}

// handOff ends a leader's turn: the oldest append still waiting leads
// next, or, when none waits, conv has no leader.
func (q *appendQueues) handOff(conv string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.waiting[conv]
	if len(w) == 0 {
		delete(q.waiting, conv)
		delete(q.leading, conv)
		return
	}
	w[0].done <- appendResult{lead: true} // it has had nothing yet: the buffer is free
}

// lead appends one batch of conv's waiting appends, then hands the lead
// on.
func (s *LogStore) lead(conv string) {
	defer s.queues.handOff(conv)
	batch := s.queues.next(conv)
	fresh := batch[:0]
	now := time.Now()
	for _, p := range batch {
		if now.Sub(p.enqueued) > s.timeout {
			p.done <- appendResult{err: fmt.Errorf("room log: %s: no turn to append within %s (the cluster is not acknowledging)", conv, s.timeout)}
			continue
		}
		fresh = append(fresh, p)
	}
	if len(fresh) > 0 {
		s.appendBatch(conv, fresh)
	}
}
