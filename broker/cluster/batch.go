package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/distchat/distchat/broker/wire"
)

// JetStream's atomic batch publish (NATS 2.12+, allowed by ensureStream):
// messages of one batch id and consecutive batch sequences are held by the
// stream's leader until the commit, then stored all or none in one round
// of agreement. Only the first carries the conversation's expected last
// record: the fence that fails a deposed sequencer's batch, since nothing
// else is stored on the subject in between.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// batchRecord is one append's record as a batch sends it.
type batchRecord struct {
	p     *pendingAppend
	data  []byte
	msgID string
}

// appendBatch stores batch (conv's waiting appends, oldest first) and
// hands each append its result. More than one go as one atomic batch; when
// JetStream refuses it for any reason but a newer last record, they are
// appended one at a time, each with its message id, so a record the batch
// did store is recognised as a duplicate.
func (s *LogStore) appendBatch(conv string, part *partition, batch []*pendingAppend) {
	if len(batch) > 1 {
		batch = s.appendAtomic(conv, part, batch)
	}
	for _, p := range batch {
		p.done(s.appendOne(conv, part, p))
	}
}

// appendAtomic appends batch atomically, retrying while another
// sequencer's record gets there first, and returns the appends still to be
// made one at a time.
func (s *LogStore) appendAtomic(conv string, part *partition, batch []*pendingAppend) []*pendingAppend {
	t := s.tail(conv)
	deadline := time.Now().Add(s.timeout)
	for attempt := 1; attempt < appendAttempts && time.Until(deadline) > 0; attempt++ {
		if s.stopping.Err() != nil {
			return finish(batch, appendResult{err: errStopping})
		}
		recs := encodeBatch(conv, t.room, batch)
		batch = batch[:0]
		for _, r := range recs {
			batch = append(batch, r.p)
		}
		if len(recs) < 2 {
			return batch // none left, or one: appended on its own
		}
		ack, err := s.publishAtomic(conv, part, t, recs, deadline)
		switch {
		case err == nil:
			s.counts.Batches.Add(1)
			s.counts.BatchedRecords.Add(int64(len(recs)))
			n := uint64(len(recs))
			s.learn(conv, tail{ack.Sequence, t.room + n})
			for k, r := range recs {
				r.p.done(appendResult{seq: t.room + 1 + uint64(k), stream: ack.Sequence - (n - 1 - uint64(k))})
			}
			return nil
		case isWrongLast(err):
			s.counts.WrongLast.Add(1)
			if t, err = s.newerTail(conv, part, t, attempt, deadline); err != nil {
				return finish(batch, appendResult{err: err})
			}
		default:
			s.counts.AtomicFallbacks.Add(1)
			if unanswered(err) { // the batch may be stored: its records are no resends then
				for _, p := range batch {
					p.asked = true
				}
			}
			return batch
		}
	}
	return batch
}

// encodeBatch encodes batch as room_seq after+1 onwards, leaving out (and
// failing) an append whose encoding fails.
func encodeBatch(conv string, after uint64, batch []*pendingAppend) []batchRecord {
	recs := make([]batchRecord, 0, len(batch))
	for _, p := range batch {
		seq := after + uint64(len(recs)) + 1
		data, err := p.stamp(seq)
		if err != nil {
			p.done(appendResult{err: encodeError(conv, seq, err)})
			continue
		}
		recs = append(recs, batchRecord{p: p, data: data, msgID: dedupID(conv, data)})
	}
	return recs
}

// publishAtomic sends recs atomically after t; the commit's ack covers all.
func (s *LogStore) publishAtomic(conv string, part *partition, t tail, recs []batchRecord, deadline time.Time) (*jetstream.PubAck, error) {
	id := nuid.Next()
	nc := s.js.Conn()
	for k, r := range recs {
		m := s.record(conv, part, t.room+1+uint64(k), r.p, r.data, r.msgID)
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(k+1))
		if k == 0 {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(t.stream, 10))
		}
		if k < len(recs)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return nil, err
			}
			continue
		}
		m.Header.Set(hdrBatchCommit, "1")
		return s.publish(m, deadline)
	}
	return nil, fmt.Errorf("room log: empty batch for %s", conv)
}

// record is the stream message of conv's record numbered seq.
func (s *LogStore) record(conv string, part *partition, seq uint64, p *pendingAppend, data []byte, msgID string) *nats.Msg {
	m := nats.NewMsg(subjectOf(part.index, conv))
	m.Data = data
	m.Header.Set(hdrSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(hdrTime, strconv.FormatInt(p.timeNS, 10))
	m.Header.Set(hdrNode, p.node)
	if msgID != "" {
		m.Header.Set(jetstream.MsgIDHeader, msgID)
	}
	return m
}

// finish hands every append of batch the result r and returns none left.
func finish(batch []*pendingAppend, r appendResult) []*pendingAppend {
	for _, p := range batch {
		p.done(r)
	}
	return nil
}

// appendOne appends p on its own, expecting the subject's last record to
// be the one this broker knows; when another sequencer got there first it
// learns the new last record and tries again with the next room_seq.
func (s *LogStore) appendOne(conv string, part *partition, p *pendingAppend) appendResult {
	t := s.tail(conv)
	msgID := ""
	asked := p.asked // a publish of this append went unanswered: the stream may hold it
	deadline := time.Now().Add(s.timeout)
	for attempt := 1; ; attempt++ {
		if s.stopping.Err() != nil {
			return appendResult{err: errStopping}
		}
		seq := t.room + 1
		data, err := p.stamp(seq)
		if err != nil {
			return appendResult{err: encodeError(conv, seq, err)}
		}
		if msgID == "" {
			msgID = dedupID(conv, data)
		}
		m := s.record(conv, part, seq, p, data, msgID)
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(t.stream, 10))
		ack, err := s.publish(m, deadline)
		switch {
		case err == nil && ack.Duplicate:
			r := s.duplicate(conv, part, ack.Sequence)
			r.dup = r.dup && !asked // this append's own unanswered publish, stored: not a resend
			return r
		case err == nil:
			s.counts.Batches.Add(1)
			s.counts.BatchedRecords.Add(1)
			s.learn(conv, tail{ack.Sequence, seq})
			return appendResult{seq: seq, stream: ack.Sequence}
		case attempt < appendAttempts && isWrongLast(err) && time.Until(deadline) > 0:
			s.counts.WrongLast.Add(1)
			if t, err = s.newerTail(conv, part, t, attempt, deadline); err != nil {
				return appendResult{err: err}
			}
		case attempt < appendAttempts && msgID != "" && unanswered(err) && time.Until(deadline) > 0:
			asked = true
			// No stream leader answered (an election): ask again. The
			// message id makes a repeat of a stored append a duplicate.
		case attempt < appendAttempts && isDuplicateInFlight(err):
			// The same message is being stored through another broker
			// right now: its acknowledgement is a moment away.
			if err := s.pause(10 * time.Millisecond); err != nil {
				return appendResult{err: err}
			}
		default:
			return appendResult{err: fmt.Errorf("room log: append %s #%d to the replicated log: %w", conv, seq, err)}
		}
	}
}

// publish sends m and waits for its acknowledgement. While the stream has
// no leader to answer (a leadership moving) it asks again every
// pubRetryWait until the publish's timeout.
func (s *LogStore) publish(m *nats.Msg, deadline time.Time) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(s.stopping, min(publishTimeout, time.Until(deadline)))
	defer cancel()
	return s.js.PublishMsg(ctx, m, jetstream.WithRetryWait(pubRetryWait), jetstream.WithRetryAttempts(int(publishTimeout/pubRetryWait)))
}

// pubRetryWait is how soon a publish that found no stream leader asks
// again. A planned step-down leaves a stream without a leader for a few
// milliseconds; nats.go's default wait, 250 ms, would be the whole pause
// a rolling restart's handover costs each partition.
const pubRetryWait = 20 * time.Millisecond

// encodeError is an append's failed encoding of its record.
func encodeError(conv string, seq uint64, err error) error {
	return fmt.Errorf("room log: encode %s #%d: %w", conv, seq, err)
}

// dedupID is a record's JetStream message id: a hash of its conversation,
// sender and message id (as the hook recognises a resend); "" without one.
// A chat envelope takes the wire package's scanner (encoding/json showed
// in the leader's profile); anything else encoding/json.
func dedupID(conv string, data []byte) string {
	var e struct{ ID, From string }
	if env, err := wire.DecodeEnvelope(data, len(data)); err == nil {
		e.ID, e.From = env.ID, env.From
	} else if json.Unmarshal(data, &e) != nil {
		return ""
	}
	if e.ID == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(conv + "\x00" + e.From + "\x00" + e.ID))
	return hex.EncodeToString(sum[:16])
}

// duplicate answers an append JetStream holds already at stream sequence
// at with the stored record's room_seq.
func (s *LogStore) duplicate(conv string, part *partition, at uint64) appendResult {
	ctx, cancel := context.WithTimeout(s.stopping, s.timeout)
	defer cancel()
	m, err := part.stream.GetMsg(ctx, at)
	if err != nil {
		return appendResult{err: fmt.Errorf("room log: read stored copy of a resend in %s: %w", conv, err)}
	}
	seq, err := strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
	if err != nil {
		return appendResult{err: fmt.Errorf("room log: stored copy of a resend in %s: %s header: %w", conv, hdrSeq, err)}
	}
	return appendResult{seq: seq, stream: at, dup: true}
}

// attemptTimeout bounds one request to a stream.
const attemptTimeout = time.Second

// publishTimeout bounds one publish: one that reaches a server as its
// leadership moves, or a dead leader, gets no answer, and the append asks
// again after it (same message id, so nothing is stored twice) rather than
// waiting out its timeout. A LAN acknowledges within milliseconds.
const publishTimeout = 500 * time.Millisecond

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
