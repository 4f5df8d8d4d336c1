package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
)

// A broker that does not lead a conversation's partition hands its
// clients' appends to the broker that does, over NATS request/reply: the
// record, stamped as number 0, goes to that broker's forward subject; its
// sequencer numbers it, batches it with the conversation's other appends
// and answers with the record's room_seq and stream sequence once the
// cluster has acknowledged it. The record keeps the origin's name in its
// Distchat-Node header, so the origin routes it to its own clients (after
// the hook returns) and every other broker routes it as replicated.

// forwardPrefix starts each broker's forward subject: forwardPrefix.<node>.
const forwardPrefix = "distchat.roomlog.append"

// Forward request and answer headers.
const (
	hdrConv      = "Distchat-Conv"       // the conversation, base64url
	hdrStreamSeq = "Distchat-Stream-Seq" // the record's stream sequence
	hdrDup       = "Distchat-Duplicate"  // "1": the stream held the record already
	hdrError     = "Distchat-Error"      // the append failed: why
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

// takeForward queues one forwarded append; the sequencer answers it.
func (s *LogStore) takeForward(m *nats.Msg) {
	conv, timeNS, node, err := parseForward(m)
	if err != nil || s.restamp == nil {
		s.answer(m, appendResult{err: errors.Join(err, errors.New("not taking forwarded appends"))})
		return
	}
	data := m.Data
	s.sequence(conv, s.parts[partitionOf(conv, len(s.parts))], &pendingAppend{timeNS: timeNS, node: node,
		stamp: func(seq uint64) ([]byte, error) { return s.restamp(data, seq) },
		done:  func(r appendResult) { s.answer(m, r) }})
}

// parseForward reads a forwarded append's headers.
func parseForward(m *nats.Msg) (conv string, timeNS int64, node string, err error) {
	b, err := base64.RawURLEncoding.DecodeString(m.Header.Get(hdrConv))
	if err != nil || len(b) == 0 {
		return "", 0, "", fmt.Errorf("forwarded append: %s header %q", hdrConv, m.Header.Get(hdrConv))
	}
	timeNS, err = strconv.ParseInt(m.Header.Get(hdrTime), 10, 64)
	if err != nil {
		return "", 0, "", fmt.Errorf("forwarded append: %s header: %w", hdrTime, err)
	}
	node = m.Header.Get(hdrNode)
	if node == "" {
		return "", 0, "", fmt.Errorf("forwarded append: no %s header", hdrNode)
	}
	return string(b), timeNS, node, nil
}

// answer replies to a forwarded append with its result.
func (s *LogStore) answer(m *nats.Msg, r appendResult) {
	reply := nats.NewMsg(m.Reply)
	if r.err != nil {
		reply.Header.Set(hdrError, r.err.Error())
	} else {
		reply.Header.Set(hdrSeq, strconv.FormatUint(r.seq, 10))
		reply.Header.Set(hdrStreamSeq, strconv.FormatUint(r.stream, 10))
		if r.dup {
			reply.Header.Set(hdrDup, "1")
		}
	}
	if err := m.RespondMsg(reply); err != nil {
		s.log.WithError(err).WithField("event", logevent.AppendFailed).Warn("room log: answer to a forwarded append not sent; its broker times out and appends it itself")
	}
}

// forward hands an append of this broker's client to owner's sequencer
// and returns its result. When owner does not answer (it died or left),
// this broker sequences the append itself: the conversation's expected
// last record fences it against owner's, and the message id makes a
// record owner did store a duplicate, not a second copy.
func (s *LogStore) forward(owner, conv string, part *partition, timeNS int64, encode func(seq uint64) ([]byte, error)) appendResult {
	if _, err := encode(probeSeq); err != nil { // the size check, on the largest number
		return appendResult{err: encodeError(conv, probeSeq, err)}
	}
	data, err := encode(0)
	if err != nil {
		return appendResult{err: encodeError(conv, 0, err)}
	}
	m := nats.NewMsg(forwardSubject(owner))
	m.Data = data
	m.Header.Set(hdrConv, base64.RawURLEncoding.EncodeToString([]byte(conv)))
	m.Header.Set(hdrTime, strconv.FormatInt(timeNS, 10))
	m.Header.Set(hdrNode, s.node)
	ctx, cancel := context.WithTimeout(s.stopping, s.timeout+attemptTimeout)
	defer cancel()
	resp, err := s.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		if s.stopping.Err() != nil {
			return appendResult{err: errStopping}
		}
		s.log.WithError(err).WithFields(logrus.Fields{"event": logevent.AppendFailed, "owner": owner, "stream": part.name}).
			Warn("room log: the partition's leader did not answer a forwarded append; appending it here")
		part.leader.Store("")
		return s.appendHere(conv, part, s.ownAppend(timeNS, encode))
	}
	r := parseAnswer(resp)
	if resp.Header.Get(hdrError) == errStopping.Error() { // owner is leaving: its successor is not known yet
		part.leader.Store("")
		return s.appendHere(conv, part, s.ownAppend(timeNS, encode))
	}
	if r.err == nil && !r.dup {
		_, r.err = encode(r.seq) // lays out this broker's copy, which the hook routes
	}
	s.counts.Forwarded.Add(1)
	return r
}

// parseAnswer reads the answer to a forwarded append.
func parseAnswer(m *nats.Msg) appendResult {
	if e := m.Header.Get(hdrError); e != "" {
		return appendResult{err: fmt.Errorf("room log: the partition's sequencer: %s", e)}
	}
	seq, err1 := strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
	stream, err2 := strconv.ParseUint(m.Header.Get(hdrStreamSeq), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return appendResult{err: fmt.Errorf("room log: unreadable answer to a forwarded append: %w", err)}
	}
	return appendResult{seq: seq, stream: stream, dup: m.Header.Get(hdrDup) == "1"}
}
