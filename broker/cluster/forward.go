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

// A broker that does not lead a conversation's partition forwards its
// clients' appends to the leader over NATS request/reply, a batch at a
// time (sequencer.go), stamped as number 0. The leader's sequencer numbers
// them with the conversation's other appends and answers with each
// record's room_seq and stream sequence once the cluster has acknowledged
// it. A record keeps its origin in its Distchat-Node header.

// forwardPrefix starts each broker's forward subject: forwardPrefix.<node>.
const forwardPrefix = "distchat.roomlog.append"

// Forward request and answer headers.
const (
	hdrConv  = "Distchat-Conv"  // the conversation, base64url
	hdrError = "Distchat-Error" // the request was not taken: why
)

func forwardSubject(node string) string { return forwardPrefix + "." + node }

// takeForward queues a forwarded batch, answering once each has a result.
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

// answer replies to a forward with its results, or err if not taken.
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

// forwardBatch hands batch to owner's sequencer in one request and each
// append its result. When owner does not answer or is stopping, this
// broker appends them itself: the expected last record fences it against
// owner's, and the message id makes a record owner did store a duplicate.
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

// forwardTimeout bounds the wait for a forward's answer: a leader answers
// within milliseconds, and the conversation's next writes wait behind it.
const forwardTimeout = publishTimeout

// appendElsewhere appends batch here and forgets the leader that failed to.
func (s *LogStore) appendElsewhere(conv string, part *partition, batch []*pendingAppend) {
	part.leader.Store("")
	s.appendBatch(conv, part, batch)
}

// encodeForward lays out batch as a forward request's body, each record
// size-checked on probeSeq and stamped as number 0; an append whose
// encoding fails gets its error and is left out of sent.
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
