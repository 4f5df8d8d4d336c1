package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
)

// A broker that does not lead a conversation's partition hands its
// clients' appends to the broker that does, over NATS request/reply, a
// batch at a time: the conversation's queue here (sequencer.go) drains to
// the leader what collected while the previous request was out, the
// records stamped as number 0, in one request to the leader's forward
// subject. The leader's sequencer numbers them, batches them with the
// conversation's other appends and answers with each record's room_seq
// and stream sequence once the cluster has acknowledged it. A record keeps
// the origin's name in its Distchat-Node header.

// forwardPrefix starts each broker's forward subject: forwardPrefix.<node>.
const forwardPrefix = "distchat.roomlog.append"

// Forward request and answer headers.
const (
	hdrConv  = "Distchat-Conv"  // the conversation, base64url
	hdrError = "Distchat-Error" // the request was not taken: why
)

func forwardSubject(node string) string { return forwardPrefix + "." + node }

// serveForwards takes other brokers' appends into this broker's sequencer.
func (s *LogStore) serveForwards() error {
	sub, err := s.nc.Subscribe(forwardSubject(s.node), s.takeForward)
	if err != nil {
		return fmt.Errorf("room log: take forwarded appends: %w", err)
	}
	s.serving = sub
	return nil
}

// takeForward queues a forwarded batch of one conversation's records into
// this broker's sequencer, in order; the answer goes once every record has
// its result.
func (s *LogStore) takeForward(m *nats.Msg) {
	conv, node, recs, err := parseForward(m)
	switch {
	case err == nil && s.restamp == nil:
		err = errors.New("not taking forwarded appends")
	case err == nil && s.stopping.Err() != nil:
		err = errStopping // the origin appends them itself at once
	}
	if err != nil {
		s.answer(m, nil, err)
		return
	}
	part := s.parts[partitionOf(conv, len(s.parts))]
	results := make([]appendResult, len(recs))
	var left atomic.Int64
	left.Store(int64(len(recs)))
	ps := make([]*pendingAppend, len(recs))
	for i, r := range recs {
		ps[i] = &pendingAppend{timeNS: r.timeNS, node: node, forwarded: true,
			stamp: func(seq uint64) ([]byte, error) { return s.restamp(r.data, seq) },
			done: func(res appendResult) {
				results[i] = res
				if left.Add(-1) == 0 {
					s.answer(m, results, nil)
				}
			}}
	}
	s.sequence(conv, part, ps...)
}

// parseForward reads a forward request.
func parseForward(m *nats.Msg) (conv, node string, recs []forwardedRecord, err error) {
	b, err := base64.RawURLEncoding.DecodeString(m.Header.Get(hdrConv))
	if err != nil || len(b) == 0 {
		return "", "", nil, fmt.Errorf("forwarded append: %s header %q", hdrConv, m.Header.Get(hdrConv))
	}
	node = m.Header.Get(hdrNode)
	if node == "" {
		return "", "", nil, fmt.Errorf("forwarded append: no %s header", hdrNode)
	}
	recs, err = parseForwardBody(m.Data)
	return string(b), node, recs, err
}

// answer replies to a forward request with its records' results, or with
// err when it was not taken at all.
func (s *LogStore) answer(m *nats.Msg, results []appendResult, err error) {
	reply := nats.NewMsg(m.Reply)
	if err == nil {
		reply.Data, err = encodeResults(results)
	}
	if err != nil {
		reply.Header.Set(hdrError, err.Error())
	}
	if err := m.RespondMsg(reply); err != nil {
		s.log.WithError(err).WithField("event", logevent.AppendFailed).Warn("room log: answer to a forwarded append not sent; its broker times out and appends it itself")
	}
}

// forwardBatch hands batch, appends of this broker's clients to conv, to
// owner's sequencer in one request and hands each its result. When owner
// does not answer (it died or left) or is stopping, this broker appends
// them itself: the conversation's expected last record fences it against
// owner's, and the message id makes a record owner did store a duplicate,
// not a second copy.
func (s *LogStore) forwardBatch(owner, conv string, part *partition, batch []*pendingAppend) {
	sent, body := encodeForward(conv, batch)
	if len(sent) == 0 {
		return
	}
	m := nats.NewMsg(forwardSubject(owner))
	m.Data = body
	m.Header.Set(hdrConv, base64.RawURLEncoding.EncodeToString([]byte(conv)))
	m.Header.Set(hdrNode, s.node)
	ctx, cancel := context.WithTimeout(s.stopping, min(forwardTimeout, s.timeout))
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(ctx, m)
	switch {
	case err != nil && s.stopping.Err() != nil:
		finish(sent, appendResult{err: errStopping})
		return
	case err != nil:
		s.log.WithError(err).WithFields(logrus.Fields{"event": logevent.AppendFailed, "owner": owner, "stream": part.name}).
			Warn("room log: the partition's leader did not answer a forwarded append; appending it here")
		s.appendElsewhere(conv, part, sent)
		return
	case resp.Header.Get(hdrError) == errStopping.Error(): // owner is leaving: its successor is not known yet
		s.appendElsewhere(conv, part, sent)
		return
	case resp.Header.Get(hdrError) != "":
		finish(sent, appendResult{err: fmt.Errorf("room log: the partition's sequencer: %s", resp.Header.Get(hdrError))})
		return
	}
	rs, err := parseResults(resp.Data, len(sent))
	if err != nil {
		finish(sent, appendResult{err: err})
		return
	}
	var again []*pendingAppend
	for i, r := range rs {
		p := sent[i]
		if r.err != nil && strings.HasSuffix(r.err.Error(), errStopping.Error()) {
			again = append(again, p)
			continue
		}
		if r.err == nil && !r.dup {
			_, r.err = p.stamp(r.seq) // lays out this broker's copy
		}
		s.counts.Forwarded.Add(1)
		p.done(r)
	}
	if len(again) > 0 {
		s.appendElsewhere(conv, part, again)
	}
}

// forwardTimeout bounds the wait for a forward's answer. A leader answers
// within milliseconds; a forward unanswered for longer went to a broker that
// left or lost the leadership as it arrived, and while it waits the
// conversation's next writes from this broker wait behind it. After it the
// origin appends the records itself, fenced, and a record the leader did
// store comes back as a duplicate.
const forwardTimeout = publishTimeout

// appendElsewhere appends batch here after its partition's leader failed
// to: the leader is forgotten until JetStream names one again.
func (s *LogStore) appendElsewhere(conv string, part *partition, batch []*pendingAppend) {
	part.leader.Store("")
	s.appendBatch(conv, part, batch)
}

// encodeForward lays out batch as a forward request's body: each record
// size-checked on the largest number and stamped as number 0. An append
// whose encoding fails gets its error and is left out of sent.
func encodeForward(conv string, batch []*pendingAppend) (sent []*pendingAppend, body []byte) {
	recs := make([]forwardedRecord, 0, len(batch))
	for _, p := range batch {
		if _, err := p.stamp(probeSeq); err != nil {
			p.done(appendResult{err: encodeError(conv, probeSeq, err)})
			continue
		}
		data, err := p.stamp(0)
		if err != nil {
			p.done(appendResult{err: encodeError(conv, 0, err)})
			continue
		}
		recs = append(recs, forwardedRecord{timeNS: p.timeNS, data: data})
		sent = append(sent, p)
	}
	return sent, appendForward(nil, recs)
}
