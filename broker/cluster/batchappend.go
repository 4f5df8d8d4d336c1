package cluster

import (
	"context"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// JetStream's atomic batch publish (NATS 2.12 and later; the stream allows
// it, ensureStream): messages carrying one batch id and consecutive batch
// sequences are held by the stream's leader until the one marked commit,
// then checked and proposed together, one round of agreement, and stored
// all or none. Only the first message may carry an expected last
// sequence, and nothing else can be stored on the subject in between, so
// a batch's records follow the expected one and each other.
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

// appendBatch stores batch (appends of conv waiting together, oldest
// first) and hands each append its result. More than one go as one atomic
// batch; when JetStream refuses that for any reason but a newer last
// record (a resend it already holds, no leader answering, too many batches
// in flight), they are appended one at a time, each with its message id,
// so a record the batch did store is recognised as a duplicate.
func (s *LogStore) appendBatch(conv string, batch []*pendingAppend) {
	if len(batch) > 1 {
		batch = s.appendAtomic(conv, batch)
	}
	for _, p := range batch {
		seq, err := s.appendOne(conv, p.timeNS, p.encode)
		p.done <- appendResult{seq: seq, err: err}
	}
}

// appendAtomic appends batch as one atomic batch, retrying while another
// broker's record gets there first. It returns the appends still to be
// made one at a time (none when each has its result).
func (s *LogStore) appendAtomic(conv string, batch []*pendingAppend) []*pendingAppend {
	t := s.tail(conv)
	deadline := time.Now().Add(s.timeout)
	for attempt := 1; attempt < appendAttempts && time.Until(deadline) > 0; attempt++ {
		if s.stopping.Err() != nil {
			return finish(batch, appendResult{err: errStopping})
		}
		recs := s.encodeBatch(conv, t.room, batch)
		batch = batch[:0]
		for _, r := range recs {
			batch = append(batch, r.p)
		}
		if len(recs) == 0 {
			return nil
		}
		ack, err := s.publishAtomic(conv, t, recs, deadline)
		switch {
		case err == nil:
			s.learn(conv, tail{ack.Sequence, t.room + uint64(len(recs))})
			if err := s.waitApplied(ack.Sequence); err != nil {
				return finish(batch, appendResult{err: err})
			}
			for k, r := range recs {
				r.p.done <- appendResult{seq: t.room + 1 + uint64(k)}
			}
			return nil
		case isWrongLast(err):
			if t, err = s.newerTail(conv, t, attempt, deadline); err != nil {
				return finish(batch, appendResult{err: err})
			}
		default:
			s.atomicFallbacks.Add(1)
			return batch
		}
	}
	return batch
}

// encodeBatch encodes batch's records as room_seq after+1 onwards. An
// append whose encoding fails gets that error and is left out.
func (s *LogStore) encodeBatch(conv string, after uint64, batch []*pendingAppend) []batchRecord {
	recs := make([]batchRecord, 0, len(batch))
	for _, p := range batch {
		seq := after + uint64(len(recs)) + 1
		data, err := p.encode(seq)
		if err != nil {
			p.done <- appendResult{err: encodeError(conv, seq, err)}
			continue
		}
		recs = append(recs, batchRecord{p: p, data: data, msgID: dedupID(conv, data)})
	}
	return recs
}

// publishAtomic sends recs as one atomic batch after the record t and
// returns the commit's acknowledgement (its sequence is the last record's).
// All but the last go without a reply: the commit's answer covers them.
func (s *LogStore) publishAtomic(conv string, t tail, recs []batchRecord, deadline time.Time) (*jetstream.PubAck, error) {
	id := nuid.Next()
	for k, r := range recs {
		m := nats.NewMsg(subjectOf(conv))
		m.Data = r.data
		m.Header.Set(hdrSeq, strconv.FormatUint(t.room+1+uint64(k), 10))
		m.Header.Set(hdrTime, strconv.FormatInt(r.p.timeNS, 10))
		m.Header.Set(hdrNode, s.node)
		if r.msgID != "" {
			m.Header.Set(jetstream.MsgIDHeader, r.msgID)
		}
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(k+1))
		if k == 0 {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(t.stream, 10))
		}
		if k < len(recs)-1 {
			if err := s.js.Conn().PublishMsg(m); err != nil {
				return nil, err
			}
			continue
		}
		m.Header.Set(hdrBatchCommit, "1")
		ctx, cancel := context.WithTimeout(s.stopping, min(attemptTimeout, time.Until(deadline)))
		defer cancel()
		return s.js.PublishMsg(ctx, m)
	}
	return nil, nil // not reached: recs is never empty
}

// finish hands every append of batch the result r and returns none left.
func finish(batch []*pendingAppend, r appendResult) []*pendingAppend {
	for _, p := range batch {
		p.done <- r
	}
	return nil
}
