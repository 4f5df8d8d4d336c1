package cluster

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// A conversation's sequencer is the broker leading its partition's stream
// (leaders.go). It keeps one write to the conversation in flight and
// collects what arrives meanwhile into the next (group commit): a busy room
// costs one round of agreement per batch, not per record. Appends come
// from this broker's clients (Append) and other brokers (forward.go).

// maxBatch bounds a batch's records (JetStream's atomic batch allows 1,000).
const maxBatch = 256

// pendingAppend is one append waiting in its conversation's queue.
type pendingAppend struct {
	timeNS int64
	node   string // the broker whose client published it (hdrNode)
	// asked: an atomic batch carrying this append went unanswered, so the
	// stream may hold it; found there, it is this append's, not a resend.
	asked bool
	// forwarded appends are appended here, never forwarded on: two brokers
	// that each think the other leads would pass them back and forth.
	forwarded bool
	stamp     func(seq uint64) ([]byte, error) // lays out the record numbered seq
	enqueued  time.Time
	done      func(appendResult) // called once; must not block
}

// appendResult is what one append comes to.
type appendResult struct {
	seq    uint64 // room_seq
	stream uint64 // the record's stream sequence in its partition
	dup    bool   // the stream held the record already (a resend): seq is the stored one's
	err    error
}

// sequencer holds each conversation's waiting appends.
type sequencer struct {
	mu      sync.Mutex // guards waiting and busy; taken after no other lock, never held while waiting
	waiting map[string][]*pendingAppend
	busy    map[string]bool // a drain goroutine is appending for the conversation
}

// enqueue adds ps to conv's queue and reports whether the caller is to
// start conv's drain (none runs).
func (q *sequencer) enqueue(conv string, ps ...*pendingAppend) (start bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.waiting == nil {
		q.waiting, q.busy = map[string][]*pendingAppend{}, map[string]bool{}
	}
	q.waiting[conv] = append(q.waiting[conv], ps...)
	if q.busy[conv] {
		return false
	}
	q.busy[conv] = true
	return true
}

// next takes up to maxBatch of conv's waiting appends, oldest first; when
// none waits it marks conv idle and returns nil. Before notBefore, while
// fewer than maxBatch wait, it takes none and returns how long to wait.
func (q *sequencer) next(conv string, now, notBefore time.Time) ([]*pendingAppend, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	w := q.waiting[conv]
	if len(w) == 0 {
		delete(q.waiting, conv)
		delete(q.busy, conv)
		return nil, 0
	}
	if now.Before(notBefore) && len(w) < maxBatch {
		return nil, notBefore.Sub(now)
	}
	n := min(len(w), maxBatch)
	batch := append([]*pendingAppend(nil), w[:n]...)
	clear(w[:n])
	q.waiting[conv] = w[n:]
	return batch, 0
}

// sequence queues ps for conv, starting a drain goroutine if none runs.
func (s *LogStore) sequence(conv string, part *partition, ps ...*pendingAppend) {
	now := time.Now()
	for _, p := range ps {
		p.enqueued = now
	}
	if s.seq.enqueue(conv, ps...) {
		go s.drain(conv, part)
	}
}

// drain appends conv's queue one batch at a time until it is empty, or
// forwards it to the partition's leader, so a conversation has one write
// in flight from each broker and one broker's appends keep their order.
// Batches are at least interval apart; the first goes at once.
func (s *LogStore) drain(conv string, part *partition) {
	var notBefore time.Time // the drain's first batch goes at once
	for {
		now := time.Now()
		if s.stopping.Err() != nil {
			notBefore = time.Time{} // the batch goes now and fails
		}
		batch, wait := s.seq.next(conv, now, notBefore)
		if wait > 0 {
			_ = s.pause(wait)
			continue
		}
		if batch == nil {
			return
		}
		notBefore = now.Add(s.interval)
		fresh := batch[:0]
		for _, p := range batch {
			if time.Since(p.enqueued) > s.timeout {
				p.done(appendResult{err: fmt.Errorf("room log: %s: not appended within %s (the cluster is not acknowledging)", conv, s.timeout)})
				continue
			}
			fresh = append(fresh, p)
		}
		switch owner := s.appender(conv, part, now); {
		case len(fresh) == 0:
		case owner != s.node && s.restamp != nil && !slices.ContainsFunc(fresh, isForwarded):
			s.forwardBatch(owner, conv, part, fresh)
		default:
			s.appendBatch(conv, part, fresh)
		}
	}
}

func isForwarded(p *pendingAppend) bool { return p.forwarded }

// soleWriterWindow is how long after the view took another broker's
// client's record in a conversation this broker keeps forwarding its own
// appends to the conversation's sequencer.
const soleWriterWindow = 10 * time.Second

// appender is the broker that appends conv's next batch from this one:
// this broker itself while its clients are the conversation's only
// writers (no other broker's record in the view for soleWriterWindow),
// else the partition's leader, the conversation's sequencer. A sole
// writer's append goes straight to the stream, fenced as every append is,
// and saves the forward's round trip and the leader's work: a DM or a
// room whose members share a broker is most of a chat's traffic. Two
// brokers that both start writing a quiet conversation race once (the
// fence refuses the loser, who learns the winner's record and numbers
// after it); each then sees the other's record and forwards.
func (s *LogStore) appender(conv string, part *partition, now time.Time) string {
	s.mu.Lock()
	at, seen := s.othersAt[conv]
	if seen && now.Sub(at) > soleWriterWindow {
		delete(s.othersAt, conv)
		seen = false
	}
	s.mu.Unlock()
	if !seen {
		return s.node
	}
	return s.ownerOf(part)
}

// sawOtherWriter notes that the view took, at now, a record of conv that
// another broker's client published.
func (s *LogStore) sawOtherWriter(conv string, now time.Time) {
	s.mu.Lock()
	s.othersAt[conv] = now
	s.mu.Unlock()
}
