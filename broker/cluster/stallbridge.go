package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
)

// A broker's view follows each stream through one consumer, on its own
// replica when JetStream would place it there (follow.go). When the
// consumer is lost, or sits on another broker that dies, starting another
// needs the metadata leader and may land on the dead broker again (10 s a
// try). Meanwhile the view stalls, and with it this broker's appends and
// live deliveries.
//
// The stall bridge reads the records the consumer does not deliver with
// direct gets, which any replica answers (this broker's own first) without
// a consumer or the metadata leader. It polls from the view's sequence on
// until the consumer delivers a record past the view again.

// bridgePoll is how often the stall bridge asks again after finding none.
const bridgePoll = 25 * time.Millisecond

// bridgeGetTimeout bounds one direct get: a replica shutting down may
// never answer, and the next try reaches a live one.
const bridgeGetTimeout = 200 * time.Millisecond

// bridgeStall starts p's stall bridge, unless it runs.
func (s *LogStore) bridgeStall(p *partition) {
	p.stalled.Store(true)
	if !p.bridging.CompareAndSwap(false, true) {
		return
	}
	go func() {
		for {
			s.log.WithFields(logrus.Fields{"event": logevent.RoomLogFollowError, "stream": p.name}).Warn("room log: consumer stalled; reading the stream directly until it delivers again")
			took := s.bridge(p)
			s.log.WithFields(logrus.Fields{"event": logevent.RoomLogFollowError, "stream": p.name, "records": took}).Info("room log: consumer delivers again; direct reads end")
			p.bridging.Store(false)
			// A stall reported while this bridge was ending found it
			// running and started none: bridge it now.
			if !p.stalled.Load() || s.stopping.Err() != nil || !p.bridging.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// bridge takes records into the view by direct get while the consumer is
// stalled and the store open, and returns how many it took.
func (s *LogStore) bridge(p *partition) int {
	took := 0
	for p.stalled.Load() && s.stopping.Err() == nil {
		m, err := s.next(p)
		switch {
		case err == nil:
			if s.take(p, m.Sequence, m.Subject, m.Header, m.Data) {
				took++
			}
			continue
		case errors.Is(err, jetstream.ErrMsgNotFound), unanswered(err), errors.Is(err, context.Canceled):
		default:
			s.log.WithError(err).WithField("event", logevent.RoomLogFollowError).Debug("room log: direct read")
		}
		select {
		case <-time.After(bridgePoll):
		case <-s.stopping.Done():
		}
	}
	return took
}

// next reads p's first record after the view's sequence.
func (s *LogStore) next(p *partition) (*jetstream.RawStreamMsg, error) {
	s.mu.Lock()
	after := p.applied
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(s.stopping, bridgeGetTimeout)
	defer cancel()
	return p.stream.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(partitionSubjects(p.index)+">"))
}
