package session

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// senderGaps detects gaps in each sender's own sequence (Envelope.Seq, per
// conversation and boot), without a room log the only sign of a lost
// message. paho's handlers reorder deliveries, so a gap is reported only
// once open for gap_wait. Only the pipeline goroutine uses it.
type senderGaps map[senderKey]*senderTrack

type senderKey struct {
	from, conv string
	boot       int64
}

// senderTrack is one sender's sequence in one conversation.
type senderTrack struct {
	next  uint64
	above map[uint64]bool
	since time.Time
}

// track notes env's sequence number, delivered at now in conv.
func (g senderGaps) track(conv string, env wire.Envelope, now time.Time) {
	k := senderKey{from: env.From, conv: conv, boot: env.Boot}
	tr := g[k]
	seq := env.Seq
	if tr == nil {
		g[k] = &senderTrack{next: seq + 1, above: map[uint64]bool{}}
		return
	}
	switch {
	case seq < tr.next:
		return // late (after a reported gap) or first seen out of order
	case seq == tr.next:
		tr.next++
		tr.advance()
		if len(tr.above) == 0 {
			tr.since = time.Time{}
		}
	default:
		tr.above[seq] = true
		if tr.since.IsZero() {
			tr.since = now
		}
	}
}

// advance moves next past the numbers already seen above it.
func (tr *senderTrack) advance() {
	for tr.above[tr.next] {
		delete(tr.above, tr.next)
		tr.next++
	}
}

// checkSenders reports each sender gap open for longer than gap_wait and
// moves past it.
func (p *pipeline) checkSenders(now time.Time) {
	for k, tr := range p.senders {
		if len(tr.above) == 0 || now.Sub(tr.since) <= p.cfg.GapWait {
			continue
		}
		lo := minKey(tr.above)
		e := p.log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventGap, nodelog.FieldFrom: k.from,
			nodelog.FieldBoot: k.boot, nodelog.FieldAfterSeq: tr.next - 1, nodelog.FieldMissing: lo - tr.next})
		to := ""
		if _, _, ok := wire.ParseDMConversation(k.conv); ok {
			to = p.me
		}
		withConv(e, k.conv, to).Warn("sender sequence gap")
		tr.next = lo
		tr.advance()
		tr.since = time.Time{}
		if len(tr.above) > 0 {
			tr.since = now
		}
	}
}
