package session

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// senderGaps detects gaps in each sender's own sequence (Envelope.Seq, per
// conversation and boot). Without a room log it is the only sign of a lost
// message. Deliveries then arrive slightly reordered (paho runs handlers
// concurrently), so a missing number is reported only when it is still
// missing after gap_wait. Only the pipeline goroutine uses it.
type senderGaps struct {
	log    *logrus.Entry
	me     string
	tracks map[senderKey]*senderTrack
}

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

func newSenderGaps(log *logrus.Entry, me string) *senderGaps {
	return &senderGaps{log: log, me: me, tracks: map[senderKey]*senderTrack{}}
}

// track notes env's sequence number, delivered at now in conv.
func (g *senderGaps) track(conv string, env wire.Envelope, now time.Time) {
	k := senderKey{from: env.From, conv: conv, boot: env.Boot}
	tr := g.tracks[k]
	seq := env.Seq
	if tr == nil {
		g.tracks[k] = &senderTrack{next: seq + 1, above: map[uint64]bool{}}
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

// check reports each gap that has stayed open for longer than wait (a
// "gap" warning naming the sender) and moves past it.
func (g *senderGaps) check(now time.Time, wait time.Duration) {
	for k, tr := range g.tracks {
		if len(tr.above) == 0 || now.Sub(tr.since) <= wait {
			continue
		}
		lo := minKey(tr.above)
		e := g.log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventGap, nodelog.FieldFrom: k.from,
			nodelog.FieldBoot: k.boot, nodelog.FieldAfterSeq: tr.next - 1, nodelog.FieldMissing: lo - tr.next})
		if _, _, ok := wire.ParseDMConversation(k.conv); ok {
			e = e.WithField(nodelog.FieldTo, g.me)
		} else {
			e = e.WithField(nodelog.FieldRoom, k.conv)
		}
		e.Warn("sender sequence gap")
		tr.next = lo
		tr.advance()
		tr.since = time.Time{}
		if len(tr.above) > 0 {
			tr.since = now
		}
	}
}
