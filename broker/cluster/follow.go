package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/roomlog"
)

// followAll follows every partition and waits until the view catches up.
func (s *LogStore) followAll(ctx context.Context) error {
	for _, p := range s.parts {
		if err := s.follow(ctx, p); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	for _, p := range s.parts {
		if err := s.waitCaughtUp(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// follow feeds p's stream, in order, into the view by an ordered consumer.
func (s *LogStore) follow(ctx context.Context, p *partition) error {
	var info *jetstream.StreamInfo
	if err := retry(ctx, p.name+" stream info", func(ctx context.Context) error {
		var err error
		info, err = p.stream.Info(ctx)
		return err
	}); err != nil {
		return err
	}
	if info.State.Msgs > 0 {
		s.mu.Lock()
		p.start = info.State.LastSeq
		s.mu.Unlock()
	}
	var cons jetstream.Consumer
	if err := retry(ctx, "follow room log stream "+p.name, func(ctx context.Context) error {
		var err error
		cons, err = s.js.OrderedConsumer(ctx, p.name, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
		return err
	}); err != nil {
		return err
	}
	// Short pulls and heartbeats: when the broker holding the consumer
	// dies, it notices within two heartbeats and starts again on a live
	// broker; until then the view, local appends and live deliveries
	// stall, so the heartbeat (nats.go's shortest) bounds a failover.
	cc, err := cons.Consume(func(m jetstream.Msg) { s.apply(p, m) }, jetstream.PullExpiry(followPullExpiry), jetstream.PullHeartbeat(followHeartbeat), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		s.log.WithError(err).WithFields(logrus.Fields{"event": logevent.RoomLogFollowError, "stream": p.name}).Warn("room log: following the stream")
		// The consumer may start over, which takes seconds; the bridge
		// ends once it delivers past the view again.
		s.bridgeStall(p)
	}))
	if err != nil {
		return fmt.Errorf("follow room log stream %s: %w", p.name, err)
	}
	p.consume = cc
	return nil
}

// waitCaughtUp returns once the view has reached p's records at the start.
func (s *LogStore) waitCaughtUp(ctx context.Context, p *partition) error {
	for {
		s.mu.Lock()
		applied, seq, ch := p.applied, p.start, p.advanced
		s.mu.Unlock()
		if applied >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("room log: view of %s at stream sequence %d of %d: %w", p.name, applied, seq, ctx.Err())
		}
	}
}

// apply takes one record the consumer delivers into the view (take).
func (s *LogStore) apply(p *partition, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		s.log.WithError(err).Error("room log: record without metadata skipped")
		return
	}
	if s.take(p, meta.Sequence.Stream, m.Subject(), m.Headers(), m.Data()) {
		p.stalled.Store(false) // the consumer delivers past the view again
	}
}

// take takes the record at stream sequence at into the view, tells the
// observer, and only then advances: an append waiting for its own record
// returns after every earlier record was routed here, so members see room
// order. It reports whether the record was new: one at or below the view's
// sequence (a restarted consumer, or the stall bridge first) is skipped.
func (s *LogStore) take(p *partition, at uint64, subject string, hdr nats.Header, data []byte) bool {
	s.takeMu.Lock()
	defer s.takeMu.Unlock()
	s.mu.Lock()
	closed, applied, live := s.closed, p.applied, at > p.start
	s.mu.Unlock()
	if closed || at <= applied {
		return false // after Close (a consumer outliving it), or already taken
	}
	rec, conv, err := decodeRecord(subject, hdr, data)
	if err != nil {
		s.log.WithError(err).WithField("stream_seq", at).Error("room log: undecodable record skipped")
		s.advance(p, at, "", tail{})
		return true
	}
	if err := s.view.Put(conv, rec.Seq, rec.TimeNS, rec.Data); err != nil {
		if errors.Is(err, roomlog.ErrOutOfOrder) && rec.Seq <= s.view.Last(conv) {
			s.advance(p, at, conv, tail{at, rec.Seq}) // already in the view
			return true
		}
		s.log.WithError(err).WithFields(logrus.Fields{"conv": conv, "stream_seq": at}).Error("room log: record not taken into the view")
	}
	if o := s.observer.Load(); o != nil {
		(*o).Replicated(conv, rec, live, hdr.Get(hdrNode) == s.node)
	}
	s.advance(p, at, conv, tail{at, rec.Seq})
	return true
}

// advance moves p's view to stream sequence at, and conv's newest to t.
func (s *LogStore) advance(p *partition, at uint64, conv string, t tail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if conv != "" && t.stream > s.tails[conv].stream {
		s.tails[conv] = t
	}
	if at > p.applied {
		p.applied = at
		close(p.advanced)
		p.advanced = make(chan struct{})
	}
}

// decodeRecord reads a stream message as a room log record.
func decodeRecord(subject string, hdr nats.Header, data []byte) (roomlog.Record, string, error) {
	_, conv, err := convOf(subject)
	if err != nil {
		return roomlog.Record{}, "", err
	}
	seq, err := strconv.ParseUint(hdr.Get(hdrSeq), 10, 64)
	if err != nil || seq == 0 {
		return roomlog.Record{}, "", fmt.Errorf("%s header %q", hdrSeq, hdr.Get(hdrSeq))
	}
	ts, err := strconv.ParseInt(hdr.Get(hdrTime), 10, 64)
	if err != nil {
		ts = time.Now().UnixNano()
	}
	return roomlog.Record{Seq: seq, TimeNS: ts, Data: data}, conv, nil
}

// The follower's pull heartbeat and expiry (see follow).
const (
	followHeartbeat  = 500 * time.Millisecond
	followPullExpiry = 2 * followHeartbeat
)
