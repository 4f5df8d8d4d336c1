package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/roomlog"
	"github.com/distchat/distchat/config"
)

// Record headers: its room_seq, its broker's clock when stamped, and the
// broker whose client published it.
const (
	hdrSeq  = "Distchat-Room-Seq"
	hdrTime = "Distchat-Time"
	hdrNode = "Distchat-Node"
)

// appendAttempts bounds the tries of one append (lost races, unanswered
// publishes), as its timeout does.
const appendAttempts = 200

// dedupWindow is how long JetStream recognises a stored message id: a
// publish resent after a failover (seconds) within it is stored once.
const dedupWindow = 2 * time.Minute

// Observer is told about every record the log takes, in log order
// (roomlog.Hook.Replicated).
type Observer interface {
	Replicated(conv string, rec roomlog.Record, live, local bool)
}

// LogOptions configure a LogStore.
type LogOptions struct {
	Replicas int
	// Partitions is how many streams the log is spread over; 0 means
	// Replicas. Fixed once the log exists.
	Partitions int
	// Retention (room_log.max_*) bounds the view; each stream keeps at most
	// MaxMessages per conversation, never its newest (room_seq never
	// starts again).
	Retention config.RoomLog
	// Timeout bounds one append: its queueing, JetStream's
	// acknowledgement, and the record reaching this broker's view.
	Timeout time.Duration
	// BatchInterval is the least time between two writes of one
	// conversation from this broker.
	BatchInterval time.Duration
	// Restamp lays out a forwarded record (stamped as number 0) as number
	// seq. Without it this broker sequences every append itself.
	Restamp func(data []byte, seq uint64) ([]byte, error)
}

// LogStore is a roomlog.Store on replicated JetStream streams: the
// conversations hashed over Partitions streams, one subject each, room_seq
// in a header. A partition's leader sequences its conversations
// (sequencer.go); other brokers forward to it (forward.go). Every broker
// follows every partition into a local view (a roomlog.FileStore) that
// serves reads and feeds the Observer.
type LogStore struct {
	node     string
	ns       *server.Server
	js       jetstream.JetStream
	nc       *nats.Conn
	parts    []*partition
	view     *roomlog.FileStore
	log      *logrus.Entry
	timeout  time.Duration
	restamp  func(data []byte, seq uint64) ([]byte, error)
	seq      sequencer
	interval time.Duration // LogOptions.BatchInterval
	leaders  leaderWatch
	counts   AppendCounts

	// takeMu makes the consumers and the stall bridges take records into
	// the view one at a time (take); it is taken before mu.
	takeMu sync.Mutex
	// mu guards tails, othersAt, closed and each partition's applied,
	// advanced and start; it is taken after takeMu when both are, and never
	// held while waiting.
	mu       sync.Mutex
	tails    map[string]tail      // conversation → its newest record known here
	othersAt map[string]time.Time // conversation → when the view last took another broker's client's record
	closed   bool

	observer atomic.Pointer[Observer]
	serving  *nats.Subscription // other brokers' appends to sequence here

	// stopping is cancelled by StopAppends and Close: every wait of an
	// append ends with it.
	stopping    context.Context
	stopAppends context.CancelFunc
}

// OpenLog creates (or joins) the room log's streams, rebuilds this
// broker's view of them in dataDir/roomlog-view, and follows them.
func OpenLog(ctx context.Context, n *Node, dataDir string, opts LogOptions, log *logrus.Entry) (*LogStore, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.Partitions <= 0 {
		opts.Partitions = max(opts.Replicas, 1)
	}
	parts, err := ensureStreams(ctx, n.js, opts.Partitions, opts)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(dataDir, "roomlog-view")
	if err := os.RemoveAll(dir); err != nil { // rebuilt from the streams
		return nil, fmt.Errorf("clear room log view %s: %w", dir, err)
	}
	r := opts.Retention
	view, err := roomlog.Open(dir, roomlog.Options{MaxMessages: r.MaxMessages, MaxAge: r.MaxAge, MaxBytes: r.MaxBytes})
	if err != nil {
		return nil, err
	}
	s := &LogStore{node: n.name, ns: n.ns, js: n.js, nc: n.nc, parts: parts, view: view, log: log, timeout: opts.Timeout,
		restamp: opts.Restamp, tails: map[string]tail{}, othersAt: map[string]time.Time{}, interval: opts.BatchInterval}

	s.stopping, s.stopAppends = context.WithCancel(context.Background())
	began := time.Now()
	if err := s.followAll(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if s.serving, err = s.nc.Subscribe(forwardSubject(s.node), s.takeForward); err != nil {
		return nil, errors.Join(fmt.Errorf("room log: take forwarded appends: %w", err), s.Close())
	}
	s.watchLeaders()
	log.WithFields(logrus.Fields{"event": logevent.RoomLogOpened, "streams": len(parts), "replicas": opts.Replicas,
		"records": s.startRecords(), "recovery_ms": float64(time.Since(began).Microseconds()) / 1000}).Info("replicated room log opened")
	return s, nil
}

// SetObserver installs o for every record the view takes from now on.
func (s *LogStore) SetObserver(o Observer) { s.observer.Store(&o) }

// Append implements roomlog.Store: AppendAsync, waiting for the result.
func (s *LogStore) Append(conv string, timeNS int64, encode func(seq uint64) ([]byte, error)) (uint64, error) {
	ch := make(chan appendResult, 1)
	s.AppendAsync(conv, timeNS, encode, func(seq uint64, err error) { ch <- appendResult{seq: seq, err: err} })
	r := <-ch
	return r.seq, r.err
}

// AppendAsync implements roomlog.AsyncStore: it queues the record with its
// conversation's sequencer (sequencer.go). done is called after JetStream's
// acknowledgement (a majority holds the record) once this broker's view
// has it, so a read here sees it and every earlier record of the
// conversation was routed here first.
func (s *LogStore) AppendAsync(conv string, timeNS int64, encode func(seq uint64) ([]byte, error), done func(seq uint64, err error)) {
	switch {
	case len(conv) == 0 || len(conv) > 1024:
		done(0, fmt.Errorf("room log: conversation name of %d bytes", len(conv)))
		return
	case s.stopping.Err() != nil:
		done(0, errStopping)
		return
	}
	part := s.parts[partitionOf(conv, len(s.parts))]
	p := &pendingAppend{timeNS: timeNS, node: s.node, stamp: encode}
	p.done = func(r appendResult) {
		if r.err != nil {
			done(0, r.err)
			return
		}
		go s.settle(conv, part, r, done)
	}
	s.sequence(conv, part, p)
}

// settle calls done with r once the view has taken the record.
func (s *LogStore) settle(conv string, part *partition, r appendResult, done func(seq uint64, err error)) {
	switch err := s.waitApplied(part, r.stream); {
	case err != nil:
		done(0, err)
	case r.dup:
		done(0, &roomlog.DuplicateError{Conv: conv, Seq: r.seq})
	default:
		done(r.seq, nil)
	}
}

// AppendCounts count, for /stats, how well the sequencer batches and how
// often it raced another one.
type AppendCounts struct {
	Batches, BatchedRecords atomic.Int64 // writes sent, records in them
	Forwarded               atomic.Int64 // appends the partition's leader sequenced
	// WrongLast counts writes refused because another sequencer's record
	// came first; AtomicFallbacks batches refused otherwise, appended one
	// at a time instead.
	WrongLast, AtomicFallbacks atomic.Int64
}

// AppendCounts is what this broker's appends came to so far.
func (s *LogStore) AppendCounts() *AppendCounts { return &s.counts }

// probeSeq is the largest room_seq: a record stamped with it is the
// largest the record can be, so a size check on it holds for any number.
const probeSeq = math.MaxUint64

// StopAppends fails every waiting append now and every later one at once,
// so a stopping broker (the last one has no majority to acknowledge) does
// not hold its shutdown for their timeout. Publishers get no PUBACK and
// resend elsewhere; a stored append is recognised by its message id.
func (s *LogStore) StopAppends() { s.stopAppends() }

// Read implements roomlog.Store from this broker's view.
func (s *LogStore) Read(conv string, after uint64, limit int) ([]roomlog.Record, error) {
	return s.view.Read(conv, after, limit)
}

// Newest implements roomlog.Store from this broker's view.
func (s *LogStore) Newest(conv string, n int) ([]roomlog.Record, error) {
	return s.view.Newest(conv, n)
}

// Last implements roomlog.Store from this broker's view.
func (s *LogStore) Last(conv string) uint64 { return s.view.Last(conv) }

// Conversations implements roomlog.Store from this broker's view.
func (s *LogStore) Conversations() []string { return s.view.Conversations() }

// Applied is the sum over the partitions of the stream sequences this
// broker's view has reached: brokers that agree on it serve the same log.
func (s *LogStore) Applied() uint64 {
	return s.sumParts(func(p *partition) uint64 { return p.applied })
}

// startRecords is how many records the streams held when the view was built.
func (s *LogStore) startRecords() uint64 {
	return s.sumParts(func(p *partition) uint64 { return p.start })
}

// sumParts adds up f over the partitions, with mu held.
func (s *LogStore) sumParts(f func(*partition) uint64) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var sum uint64
	for _, p := range s.parts {
		sum += f(p)
	}
	return sum
}

// Counts are the view's conversations, records served and bytes, for /stats.
func (s *LogStore) Counts() (convs int, records int64, fileBytes int64) { return s.view.Counts() }

// Close stops following the streams and closes the view; the node's owner
// closes the node.
func (s *LogStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.stopAppends()
	for _, p := range s.parts {
		close(p.advanced)
		p.advanced = make(chan struct{})
	}
	s.mu.Unlock()
	s.leaders.stop()
	if s.serving != nil {
		_ = s.serving.Unsubscribe()
	}
	var wg sync.WaitGroup
	for _, p := range s.parts {
		p.consumeMu.Lock()
		run := p.run
		p.consumeMu.Unlock()
		if run != nil {
			run.gone.Store(true)
			wg.Go(func() {
				if !stopWithin(consumerStopGrace, run.cc.Stop) {
					s.log.WithFields(logrus.Fields{"event": logevent.RoomLogFollowError, "stream": p.name}).Warn("room log: a stream's consumer did not stop in time; it ends with the cluster node")
				}
			})
		}
	}
	wg.Wait()
	return s.view.Close()
}
