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

// Record headers: the conversation's sequence number (room_seq), the
// broker's clock when it stamped the record, and the broker whose client
// published it.
const (
	hdrSeq  = "Distchat-Room-Seq"
	hdrTime = "Distchat-Time"
	hdrNode = "Distchat-Node"
)

// appendAttempts bounds how often one append tries (another sequencer
// appended to the same conversation first, or no leader answered); the
// append's timeout bounds them too.
const appendAttempts = 200

// dedupWindow is how long JetStream recognises a message id it has stored:
// a publish resent to another broker after a failover, within it, is
// stored once. Failover takes seconds.
const dedupWindow = 2 * time.Minute

// Observer is told about every record the log takes, in log order (the
// room log hook, roomlog.Hook.Replicated).
type Observer interface {
	Replicated(conv string, rec roomlog.Record, live, local bool)
}

// LogOptions configure a LogStore.
type LogOptions struct {
	Replicas int
	// Partitions is how many streams the log is spread over (the
	// conversations hashed onto them); 0 means Replicas. Fixed once the
	// log exists.
	Partitions int
	// Retention is the room log's retention (room_log.max_*): the view
	// serves what it keeps, and each stream keeps at most MaxMessages per
	// conversation (it never drops a conversation's newest record, so
	// room_seq never starts again).
	Retention config.RoomLog
	// Timeout bounds one append: its wait in the sequencer's queue,
	// JetStream's acknowledgement, and the record reaching this broker's
	// view. A broker cut off from the majority refuses the publish after it.
	Timeout time.Duration
	// BatchInterval is the least time between two writes of one
	// conversation from this broker (config.Cluster.BatchInterval).
	BatchInterval time.Duration
	// Restamp lays out a record, given as its sequencer received it from
	// another broker (stamped as number 0), as number seq. Without it this
	// broker sequences every append itself (no forwarding).
	Restamp func(data []byte, seq uint64) ([]byte, error)
}

// LogStore is a roomlog.Store on replicated JetStream streams: the
// conversations hashed over Partitions streams, one subject per
// conversation, room_seq in a header. The broker leading a partition's
// stream sequences its conversations in batches (sequencer.go); the other
// brokers forward their clients' appends to it (forward.go). Every broker
// follows every partition into a local view (a roomlog.FileStore), from
// which it serves reads, and tells its Observer about records other
// brokers' clients published so it can route them live.
type LogStore struct {
	node    string
	ns      *server.Server
	js      jetstream.JetStream
	nc      *nats.Conn
	parts   []*partition
	view    *roomlog.FileStore
	log     *logrus.Entry
	timeout time.Duration
	restamp func(data []byte, seq uint64) ([]byte, error)
	seq     sequencer
	// interval is the least time between two writes of one conversation
	// (LogOptions.BatchInterval).
	interval time.Duration
	leaders  leaderWatch
	counts   AppendCounts

	// takeMu makes the consumers and the stall bridges take records into
	// the view one at a time (take); it is taken before mu.
	takeMu sync.Mutex
	// mu guards tails, closed and each partition's applied, advanced and
	// start; it is taken after takeMu when both are, and never held while
	// waiting.
	mu     sync.Mutex
	tails  map[string]tail // conversation → its newest record known here
	closed bool

	observer atomic.Pointer[observerBox]
	serving  *nats.Subscription // other brokers' appends to sequence here

	// stopping is cancelled by StopAppends (and Close): every wait of an
	// append (its queue, JetStream's answer, the view) ends with it.
	stopping    context.Context
	stopAppends context.CancelFunc
}

type observerBox struct{ o Observer }

// OpenLog creates (or joins) the room log's streams, builds this broker's
// view of them in dataDir/roomlog-view, follows them, and starts taking
// other brokers' appends for the partitions it leads.
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
		restamp: opts.Restamp, tails: map[string]tail{}, interval: opts.BatchInterval}

	s.stopping, s.stopAppends = context.WithCancel(context.Background())
	began := time.Now()
	if err := s.followAll(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if err := s.serveForwards(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	s.watchLeaders()
	log.WithFields(logrus.Fields{"event": logevent.RoomLogOpened, "streams": len(parts), "replicas": opts.Replicas,
		"records": s.startRecords(), "recovery_ms": float64(time.Since(began).Microseconds()) / 1000}).Info("replicated room log opened")
	return s, nil
}

// SetObserver installs o: from now on it is told about every record the
// view takes.
func (s *LogStore) SetObserver(o Observer) { s.observer.Store(&observerBox{o}) }

// Append implements roomlog.Store: it appends as AppendAsync does and
// waits for the result.
func (s *LogStore) Append(conv string, timeNS int64, encode func(seq uint64) ([]byte, error)) (uint64, error) {
	type result struct {
		seq uint64
		err error
	}
	ch := make(chan result, 1)
	s.AppendAsync(conv, timeNS, encode, func(seq uint64, err error) { ch <- result{seq, err} })
	r := <-ch
	return r.seq, r.err
}

// AppendAsync implements roomlog.AsyncStore: it queues the record with its
// conversation's sequencer (sequencer.go), which appends it with the
// conversation's other waiting records when this broker leads the
// conversation's partition and forwards them to the leader otherwise. done
// is called after JetStream's acknowledgement (a majority of replicas hold
// the record) once this broker's view has it, so a read here sees it and
// every earlier record of the conversation was routed here first.
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

// settle waits for this broker's view to take an acknowledged record, then
// calls done with the append's result.
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

// AppendCounts count what this broker's appends came to, for /stats:
// how well the sequencer batches, and how often it raced another one.
type AppendCounts struct {
	// Batches and BatchedRecords are the writes this broker's sequencer
	// sent and the records in them.
	Batches, BatchedRecords atomic.Int64
	// Forwarded counts appends this broker's clients published that the
	// partition's leader sequenced.
	Forwarded atomic.Int64
	// WrongLast counts writes the stream refused because another
	// sequencer's record came first (ownership moving); AtomicFallbacks
	// batches refused for another reason, appended one at a time instead.
	WrongLast, AtomicFallbacks atomic.Int64
}

// AppendCounts is what this broker's appends came to so far.
func (s *LogStore) AppendCounts() *AppendCounts { return &s.counts }

// probeSeq is the largest room_seq: a record stamped with it is the
// largest the record can be, so a size check on it holds for any number.
const probeSeq = math.MaxUint64

// StopAppends makes every append waiting on the cluster fail now, and every
// later one at once. A stopping broker calls it before it disconnects its
// clients, whose appends would otherwise hold the shutdown for up to their
// timeout: the last broker of a cluster to stop has no majority left to
// acknowledge them. Their publishers get no PUBACK and send again to
// another broker (or to this one after its restart); an append the cluster
// did store is recognised then by its message id.
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

// Applied is the sum of the stream sequences this broker's view has
// reached over the partitions: brokers that agree on it serve the same log.
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

// Close stops following the streams and closes the view. The node (and
// with it the replicated streams) is closed by its owner.
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
		if p.consume != nil {
			wg.Go(func() {
				if !stopWithin(consumerStopGrace, p.consume.Stop) {
					s.log.WithFields(logrus.Fields{"event": logevent.RoomLogFollowError, "stream": p.name}).Warn("room log: a stream's consumer did not stop in time; it ends with the cluster node")
				}
			})
		}
	}
	wg.Wait()
	return s.view.Close()
}
