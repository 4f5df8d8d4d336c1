package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
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

// follow feeds p's stream, in order, into the view by a consumer of this
// broker's own replica (consumeFrom).
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
	return retry(ctx, "follow room log stream "+p.name, func(ctx context.Context) error {
		return s.consumeFrom(ctx, p)
	})
}

// followRun is one consumer feeding a partition into the view.
type followRun struct {
	cons jetstream.Consumer
	cc   jetstream.ConsumeContext
	next uint64      // the consumer sequence expected next; used by the delivering goroutine only
	gone atomic.Bool // replaced (refollow): its deliveries are ignored
}

// consumeFrom starts a consumer of p at the record after the view's and
// makes it p's. The consumer has no acknowledgements and delivers every
// record once, in stream order; a gap in its own sequence, or its loss,
// starts another (refollow). The stall bridge covers the time between.
func (s *LogStore) consumeFrom(ctx context.Context, p *partition) error {
	s.mu.Lock()
	from := p.applied + 1
	s.mu.Unlock()
	cons, err := s.localConsumer(ctx, p, from)
	if err != nil {
		return err
	}
	run := &followRun{cons: cons, next: 1}
	run.cc, err = cons.Consume(func(m jetstream.Msg) { s.deliver(p, run, m) },
		jetstream.PullExpiry(followPullExpiry), jetstream.PullHeartbeat(followHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) { s.followFailed(p, run, err) }))
	if err != nil {
		s.dropConsumer(p, cons)
		return fmt.Errorf("follow room log stream %s: %w", p.name, err)
	}
	p.consumeMu.Lock()
	p.run = run
	p.consumeMu.Unlock()
	if s.stopping.Err() != nil { // Close may have passed this partition already
		run.gone.Store(true)
		run.cc.Stop()
	}
	return nil
}

// local reports whether run's consumer sits on node.
func (run *followRun) local(node string) bool {
	c := run.cons.CachedInfo().Cluster
	return c == nil || c.Leader == node
}

// deliver takes one record run's consumer delivers into the view (take).
func (s *LogStore) deliver(p *partition, run *followRun, m jetstream.Msg) {
	if run.gone.Load() {
		return
	}
	meta, err := m.Metadata()
	if err != nil {
		s.log.WithError(err).Error("room log: record without metadata skipped")
		return
	}
	if meta.Sequence.Consumer != run.next {
		s.refollow(p, run, fmt.Errorf("consumer delivered #%d where #%d was next", meta.Sequence.Consumer, run.next))
		return
	}
	run.next++
	if s.take(p, meta.Sequence.Stream, m.Subject(), m.Headers(), m.Data()) {
		p.stalled.Store(false) // the consumer delivers past the view again
	}
}

// followFailed handles an error of run's consumer: the stall bridge reads
// meanwhile, and a consumer that is gone is replaced.
func (s *LogStore) followFailed(p *partition, run *followRun, err error) {
	if run.gone.Load() || s.stopping.Err() != nil {
		return
	}
	s.log.WithError(err).WithFields(logrus.Fields{"event": logevent.RoomLogFollowError, "stream": p.name}).Warn("room log: following the stream")
	s.bridgeStall(p)
	switch {
	case errors.Is(err, jetstream.ErrConsumerDeleted), errors.Is(err, jetstream.ErrConsumerNotFound):
		s.refollow(p, run, err)
	case errors.Is(err, jetstream.ErrNoHeartbeat) && !run.local(s.node):
		s.refollow(p, run, err) // a consumer elsewhere: its broker may be gone
	case errors.Is(err, jetstream.ErrNoHeartbeat):
		go func() { // this broker's own consumer: replace it only if it is gone
			ctx, cancel := context.WithTimeout(s.stopping, attemptTimeout)
			defer cancel()
			if _, err := run.cons.Info(ctx); errors.Is(err, jetstream.ErrConsumerNotFound) {
				s.refollow(p, run, err)
			}
		}()
	}
}

// refollow replaces run, once, by a consumer from the view's sequence on.
func (s *LogStore) refollow(p *partition, run *followRun, why error) {
	if !run.gone.CompareAndSwap(false, true) {
		return
	}
	s.log.WithError(why).WithFields(logrus.Fields{"event": logevent.RoomLogFollowError, "stream": p.name}).Warn("room log: starting the stream's consumer again")
	s.bridgeStall(p)
	go func() {
		stopWithin(consumerStopGrace, run.cc.Stop)
		s.dropConsumer(p, run.cons)
		for s.stopping.Err() == nil {
			err := s.consumeFrom(s.stopping, p)
			if err == nil {
				return
			}
			s.log.WithError(err).WithFields(logrus.Fields{"event": logevent.RoomLogFollowError, "stream": p.name}).Warn("room log: the stream's consumer did not start; trying again")
			_ = s.pause(time.Second)
		}
	}()
}

// localConsumer creates a consumer of p from stream sequence from on.
// JetStream places a one-replica consumer on any of the stream's brokers;
// one on this broker reads its own replica and delivers in process, where
// elsewhere every record would cross a route once more. So it creates
// again, a few times, until the consumer is here.
func (s *LogStore) localConsumer(ctx context.Context, p *partition, from uint64) (jetstream.Consumer, error) {
	cfg := jetstream.ConsumerConfig{AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, Replicas: 1,
		InactiveThreshold: consumerInactive, DeliverPolicy: jetstream.DeliverAllPolicy}
	if from > 1 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from
	}
	local := s.holdsReplica(ctx, p)
	for attempt := 1; ; attempt++ {
		cons, err := s.js.CreateConsumer(ctx, p.name, cfg)
		if err != nil {
			return nil, fmt.Errorf("consumer of %s: %w", p.name, err)
		}
		info := cons.CachedInfo()
		if !local || info.Cluster == nil || info.Cluster.Leader == s.node || attempt == localConsumerAttempts {
			return cons, nil
		}
		s.dropConsumer(p, cons)
	}
}

// holdsReplica reports whether this broker holds one of p's replicas, as
// its leader or a follower (not so when the log has fewer replicas than
// the cluster has brokers); true when the stream does not say.
func (s *LogStore) holdsReplica(ctx context.Context, p *partition) bool {
	info, err := p.stream.Info(ctx)
	if err != nil || info.Cluster == nil {
		return true
	}
	return info.Cluster.Leader == s.node || slices.ContainsFunc(info.Cluster.Replicas, func(r *jetstream.PeerInfo) bool { return r.Name == s.node })
}

// dropConsumer deletes cons, not waiting long: an ephemeral consumer left
// behind ends by itself after consumerInactive.
func (s *LogStore) dropConsumer(p *partition, cons jetstream.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
	defer cancel()
	_ = s.js.DeleteConsumer(ctx, p.name, cons.CachedInfo().Name)
}

// localConsumerAttempts bounds the creations of one consumer: with three
// replicas each lands here one time in three, so thirty tries miss less
// than once in 100,000, and the last is kept wherever it lands.
const localConsumerAttempts = 30

// consumerInactive is how long JetStream keeps a consumer nobody pulls
// from: a broker that died without deleting its consumers.
const consumerInactive = time.Minute

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
	local := hdr.Get(hdrNode) == s.node
	if o := s.observer.Load(); o != nil {
		(*o).Replicated(conv, rec, live, local)
	}
	if !local {
		s.sawOtherWriter(conv, time.Now())
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
