package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// tail is a conversation's newest record: its stream and room sequences.
type tail struct{ stream, room uint64 }

// learnWait bounds an append's wait, after it lost the race for a
// room_seq, for the view to take the winning record before it asks the
// stream's leader.
const learnWait = 50 * time.Millisecond

// newerTail is conv's newest record, newer than known, for an append that
// lost the race for conv's next room_seq. The winning record reaches this
// broker's view within a round trip of its agreement, so the append waits
// for the view; after learnWait it asks the stream's leader, and when that
// knows nothing newer either it pauses, longer with each attempt.
func (s *LogStore) newerTail(conv string, part *partition, known tail, attempt int, deadline time.Time) (tail, error) {
	if t, err := s.viewTail(conv, part, known, min(learnWait, time.Until(deadline))); err != nil || t != known {
		return t, err
	}
	t, err := s.fetchTail(conv, part, deadline)
	switch {
	case err != nil && !unanswered(err):
		return known, err
	case err == nil && t.stream > known.stream:
		return t, nil
	}
	// The last record is still being agreed on (JetStream refuses a second
	// expectation on a subject in flight), or the leader did not answer:
	// give it a moment.
	return known, s.pause(time.Duration(min(attempt, 20)) * 5 * time.Millisecond)
}

// viewTail waits at most wait for the view to take a record of conv newer
// than known, and returns conv's newest record.
func (s *LogStore) viewTail(conv string, part *partition, known tail, wait time.Duration) (tail, error) {
	var t tail
	ok, err := s.awaitView(part, wait, func() bool {
		t = s.tails[conv]
		return t.stream > known.stream
	})
	if !ok {
		return known, err
	}
	return t, nil
}

// fetchTail asks the stream for conv's newest record.
func (s *LogStore) fetchTail(conv string, part *partition, deadline time.Time) (tail, error) {
	ctx, cancel := context.WithTimeout(s.stopping, min(attemptTimeout, time.Until(deadline)))
	defer cancel()
	m, err := part.stream.GetLastMsgForSubject(ctx, subjectOf(part.index, conv))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return tail{}, nil
	}
	if err != nil {
		return tail{}, fmt.Errorf("room log: newest record of %s: %w", conv, err)
	}
	seq, err := strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
	if err != nil {
		return tail{}, fmt.Errorf("room log: newest record of %s: %s header: %w", conv, hdrSeq, err)
	}
	t := tail{m.Sequence, seq}
	s.learn(conv, t)
	return t, nil
}

// tail is conv's newest record as far as this broker knows.
func (s *LogStore) tail(conv string) tail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tails[conv]
}

// learn records t as conv's newest record unless a newer one is known.
func (s *LogStore) learn(conv string, t tail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.stream > s.tails[conv].stream {
		s.tails[conv] = t
	}
}

// waitApplied returns once part's view reaches stream sequence seq.
func (s *LogStore) waitApplied(part *partition, seq uint64) error {
	ok, err := s.awaitView(part, s.timeout, func() bool { return part.applied >= seq })
	if err == nil && !ok {
		err = fmt.Errorf("room log: record %d of %s acknowledged by the cluster but not in this broker's view after %s", seq, part.name, s.timeout)
	}
	return err
}

// awaitView waits at most wait until ready (called with mu held) reports
// true, woken by every record the view takes into part: false when wait
// passes, errStopping when appends stop, errClosed when the store closes.
func (s *LogStore) awaitView(part *partition, wait time.Duration, ready func() bool) (bool, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ok, ch, closed := ready(), part.advanced, s.closed
		s.mu.Unlock()
		switch {
		case ok:
			return true, nil
		case closed:
			return false, errClosed
		}
		select {
		case <-ch:
		case <-s.stopping.Done():
			return false, errStopping
		case <-timer.C:
			return false, nil
		}
	}
}

// pause waits d, or fails at once when appends stop.
func (s *LogStore) pause(d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.stopping.Done():
		return errStopping
	}
}
