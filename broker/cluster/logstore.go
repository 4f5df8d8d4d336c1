package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/roomlog"
	"github.com/distchat/distchat/config"
)

// StreamName is the JetStream stream that holds the room log.
const StreamName = "ROOMLOG"

// Record headers: the conversation's sequence number (room_seq), the
// broker's clock when it stamped the record, and the node that appended it.
const (
	hdrSeq  = "Distchat-Room-Seq"
	hdrTime = "Distchat-Time"
	hdrNode = "Distchat-Node"
)

// appendAttempts bounds how often one Append tries (another broker
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
	// Retention is the room log's retention (room_log.max_*): the view
	// serves what it keeps, and the stream keeps at most MaxMessages per
	// conversation (it never drops a conversation's newest record, so
	// room_seq never starts again).
	Retention config.RoomLog
	// Timeout bounds one append: the wait for this broker's turn in the
	// conversation, JetStream's acknowledgement, and the record reaching
	// this broker's view. A broker cut off from the majority refuses the
	// publish after it.
	Timeout time.Duration
}

// LogStore is a roomlog.Store on a replicated JetStream stream: one subject
// per conversation, room_seq in a header, appended with the subject's
// expected last sequence so two brokers can never give two records one
// room_seq. Every broker follows the whole stream into a local view (a
// roomlog.FileStore), from which it serves reads, and tells its Observer
// about records other brokers appended so it can route them live.
type LogStore struct {
	node    string
	js      jetstream.JetStream
	stream  jetstream.Stream
	view    *roomlog.FileStore
	log     *logrus.Entry
	timeout time.Duration
	turns   turns

	// takeMu makes the consumer and the stall bridge take records into the
	// view one at a time (take); it is taken before mu.
	takeMu sync.Mutex
	// stalled is set while the consumer has missed its heartbeats and the
	// stall bridge feeds the view (bridgeStall); bridging while its
	// goroutine runs.
	stalled, bridging atomic.Bool

	// mu guards tails, applied, advanced, start and closed; it is taken
	// after takeMu when both are, and never held while waiting.
	mu       sync.Mutex
	tails    map[string]tail // conversation → its newest record known here
	applied  uint64          // the stream sequence the view has reached
	advanced chan struct{}   // closed (and replaced) when applied grows
	start    uint64          // records above it arrived after Open: live
	closed   bool

	observer atomic.Pointer[observerBox]
	consume  jetstream.ConsumeContext

	// stopping is cancelled by StopAppends (and Close): every wait of an
	// append (its turn, JetStream's answer, the view) ends with it.
	stopping    context.Context
	stopAppends context.CancelFunc
}

type observerBox struct{ o Observer }

// tail is a conversation's newest record: its stream and room sequences.
type tail struct{ stream, room uint64 }

// OpenLog creates (or joins) the room log stream, builds this broker's view
// of it in dataDir/roomlog-view from the whole stream, and follows it.
func OpenLog(ctx context.Context, n *Node, dataDir string, opts LogOptions, log *logrus.Entry) (*LogStore, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	stream, err := ensureStream(ctx, n.js, opts)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(dataDir, "roomlog-view")
	if err := os.RemoveAll(dir); err != nil { // rebuilt from the stream
		return nil, fmt.Errorf("clear room log view %s: %w", dir, err)
	}
	r := opts.Retention
	view, err := roomlog.Open(dir, roomlog.Options{MaxMessages: r.MaxMessages, MaxAge: r.MaxAge, MaxBytes: r.MaxBytes})
	if err != nil {
		return nil, err
	}
	s := &LogStore{node: n.name, js: n.js, stream: stream, view: view, log: log, timeout: opts.Timeout,
		tails: map[string]tail{}, advanced: make(chan struct{})}
	s.stopping, s.stopAppends = context.WithCancel(context.Background())
	began := time.Now()
	if err := s.follow(ctx); err != nil {
		return nil, errors.Join(err, view.Close())
	}
	log.WithFields(logrus.Fields{"event": logevent.RoomLogOpened, "stream": StreamName, "replicas": opts.Replicas,
		"records": s.start, "recovery_ms": float64(time.Since(began).Microseconds()) / 1000}).Info("replicated room log opened")
	return s, nil
}

// ensureStream creates the stream or updates it to this configuration,
// retrying while the cluster places it (right after an election JetStream
// may not yet know enough peers).
func ensureStream(ctx context.Context, js jetstream.JetStream, opts LogOptions) (jetstream.Stream, error) {
	perSubject := int64(-1)
	if opts.Retention.MaxMessages > 0 {
		perSubject = int64(opts.Retention.MaxMessages)
	}
	cfg := jetstream.StreamConfig{
		Name: StreamName, Subjects: []string{logPrefix + ".>"}, Storage: jetstream.FileStorage,
		Replicas: opts.Replicas, Retention: jetstream.LimitsPolicy, Discard: jetstream.DiscardOld,
		MaxMsgsPerSubject: perSubject, Duplicates: dedupWindow,
		AllowDirect: true, // the stall bridge reads this broker's replica (bridgeStall)
	}
	var st jetstream.Stream
	err := retry(ctx, fmt.Sprintf("room log stream %s (%d replicas)", StreamName, opts.Replicas), func(ctx context.Context) error {
		var err error
		st, err = js.CreateOrUpdateStream(ctx, cfg)
		return err
	})
	return st, err
}

// SetObserver installs o: from now on it is told about every record the
// view takes.
func (s *LogStore) SetObserver(o Observer) { s.observer.Store(&observerBox{o}) }

// Append implements roomlog.Store: it appends the conversation's next
// record to the stream, expecting the subject's last record to be the one
// this broker knows; when another broker got there first it learns the new
// last record and tries again with the next room_seq. It returns after
// JetStream's acknowledgement (a majority of replicas hold the record) and
// once this broker's view has it, so a read here sees it.
func (s *LogStore) Append(conv string, timeNS int64, encode func(seq uint64) ([]byte, error)) (uint64, error) {
	if len(conv) == 0 || len(conv) > 1024 {
		return 0, fmt.Errorf("room log: conversation name of %d bytes", len(conv))
	}
	release, err := s.turns.take(s.stopping, conv, s.timeout)
	if err != nil {
		return 0, err
	}
	defer release()
	t := s.tail(conv)
	msgID := ""
	deadline := time.Now().Add(s.timeout)
	for attempt := 1; ; attempt++ {
		if s.stopping.Err() != nil {
			return 0, errStopping
		}
		seq := t.room + 1
		data, err := encode(seq)
		if err != nil {
			return 0, fmt.Errorf("room log: encode %s #%d: %w", conv, seq, err)
		}
		if msgID == "" {
			msgID = dedupID(conv, data)
		}
		ack, err := s.publish(conv, t, seq, timeNS, data, msgID, deadline)
		switch {
		case err == nil && ack.Duplicate:
			return s.duplicate(conv, ack.Sequence)
		case err == nil:
			s.learn(conv, tail{ack.Sequence, seq})
			if err := s.waitApplied(ack.Sequence); err != nil {
				return 0, err
			}
			return seq, nil
		case attempt < appendAttempts && isWrongLast(err) && time.Until(deadline) > 0:
			if t, err = s.newerTail(conv, t, attempt, deadline); err != nil {
				return 0, err
			}
		case attempt < appendAttempts && msgID != "" && unanswered(err) && time.Until(deadline) > 0:
			// No stream leader answered (an election after a broker
			// died): ask again. The message id makes a repeat of an
			// append that did happen a duplicate, not a second record.
		case attempt < appendAttempts && isDuplicateInFlight(err):
			// The same message is being stored through another broker
			// right now: its acknowledgement is a moment away.
			if err := s.pause(10 * time.Millisecond); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("room log: append %s #%d to the replicated log: %w", conv, seq, err)
		}
	}
}

// publish sends one record with the headers that sequence it.
func (s *LogStore) publish(conv string, t tail, seq uint64, timeNS int64, data []byte, msgID string, deadline time.Time) (*jetstream.PubAck, error) {
	m := nats.NewMsg(subjectOf(conv))
	m.Data = data
	m.Header.Set(hdrSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(hdrTime, strconv.FormatInt(timeNS, 10))
	m.Header.Set(hdrNode, s.node)
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(t.stream)}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	ctx, cancel := context.WithTimeout(s.stopping, min(attemptTimeout, time.Until(deadline)))
	defer cancel()
	return s.js.PublishMsg(ctx, m, opts...)
}

// dedupID is the JetStream message id of a record: its conversation,
// sender and message id, which the hook also uses to recognise a resend.
// A record without an id gets none (no deduplication).
func dedupID(conv string, data []byte) string {
	var e struct{ ID, From string }
	if json.Unmarshal(data, &e) != nil || e.ID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(conv + "\x00" + e.From + "\x00" + e.ID))
	return hex.EncodeToString(sum[:16])
}

// attemptTimeout bounds one publish to the stream: when its leader has
// died, the append asks again after it rather than waiting out the whole
// timeout for an answer that will not come.
const attemptTimeout = time.Second

// unanswered reports a publish nobody answered in time.
func unanswered(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

func isWrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// jsErrDuplicateInFlight is JetStream's "duplicate message id is in process".
const jsErrDuplicateInFlight jetstream.ErrorCode = 10158

func isDuplicateInFlight(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrDuplicateInFlight
}

// duplicate answers an append JetStream recognised as a message it holds
// at stream sequence at: the record's room_seq, once the view has it.
func (s *LogStore) duplicate(conv string, at uint64) (uint64, error) {
	if err := s.waitApplied(at); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(s.stopping, s.timeout)
	defer cancel()
	m, err := s.stream.GetMsg(ctx, at)
	if err != nil {
		return 0, fmt.Errorf("room log: read stored copy of a resend in %s: %w", conv, err)
	}
	seq, err := strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("room log: stored copy of a resend in %s: %s header: %w", conv, hdrSeq, err)
	}
	return 0, &roomlog.DuplicateError{Conv: conv, Seq: seq}
}

// learnWait bounds how long an append that lost the race for a room_seq
// waits for this broker's view to take the winning record before it asks
// the stream's leader instead.
const learnWait = 50 * time.Millisecond

// newerTail is what an append that lost the race for conv's next room_seq
// (JetStream refused its expected last record) learns before it tries
// again: conv's newest record, newer than known. Another broker's record
// won; once the cluster has agreed on it, it reaches this broker's view
// within a round trip, so the append waits for the view: no request to
// the stream's leader (which, with several brokers busy in one room,
// would add to the leader's load) and no fixed pause. If the view has
// taken nothing newer within learnWait (the view is behind, or the
// winner is slow to be agreed on), the leader is asked; when it knows no
// newer record either, the append pauses, longer with each attempt.
func (s *LogStore) newerTail(conv string, known tail, attempt int, deadline time.Time) (tail, error) {
	if t, err := s.viewTail(conv, known, min(learnWait, time.Until(deadline))); err != nil || t != known {
		return t, err
	}
	t, err := s.fetchTail(conv, deadline)
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

// viewTail waits at most wait for this broker's view to hold a record of
// conv newer than known, and returns conv's newest record (known when none
// came).
func (s *LogStore) viewTail(conv string, known tail, wait time.Duration) (tail, error) {
	var t tail
	ok, err := s.awaitView(wait, func() bool {
		t = s.tails[conv]
		return t.stream > known.stream
	})
	if !ok {
		return known, err
	}
	return t, nil
}

// fetchTail asks the stream for conv's newest record.
func (s *LogStore) fetchTail(conv string, deadline time.Time) (tail, error) {
	ctx, cancel := context.WithTimeout(s.stopping, min(attemptTimeout, time.Until(deadline)))
	defer cancel()
	m, err := s.stream.GetLastMsgForSubject(ctx, subjectOf(conv))
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

// waitApplied returns once the view has reached stream sequence seq.
func (s *LogStore) waitApplied(seq uint64) error {
	ok, err := s.awaitView(s.timeout, func() bool { return s.applied >= seq })
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("room log: record %d acknowledged by the cluster but not in this broker's view after %s", seq, s.timeout)
	}
	return nil
}

// awaitView waits until ready, called with mu held, reports true, for at
// most wait: it reports false when wait passes first, errStopping when
// appends stop and errClosed when the store closes. Every record the view
// takes wakes it (advanced).
func (s *LogStore) awaitView(wait time.Duration, ready func() bool) (bool, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ok, ch, closed := ready(), s.advanced, s.closed
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

// Applied is the stream sequence this broker's view has reached.
func (s *LogStore) Applied() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.applied
}

// Counts are the view's conversations, records served and bytes, for /stats.
func (s *LogStore) Counts() (convs int, records int64, fileBytes int64) { return s.view.Counts() }

// Close stops following the stream and closes the view. The node (and
// with it the replicated stream) is closed by its owner.
func (s *LogStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.stopAppends()
	close(s.advanced)
	s.advanced = make(chan struct{})
	s.mu.Unlock()
	if s.consume != nil && !stopWithin(consumerStopGrace, s.consume.Stop) {
		s.log.WithField("event", logevent.RoomLogFollowError).Warn("room log: the stream's consumer did not stop in time; it ends with the cluster node")
	}
	return s.view.Close()
}
