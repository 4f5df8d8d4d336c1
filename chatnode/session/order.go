package session

import (
	"maps"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// conv is the ordering state of one conversation (room or DM), shown in
// room sequence order: a message that does not continue it waits in pending
// until the missing ones come (live or by gap repair) or gap_wait gives up.
type conv struct {
	name  string
	known bool // delivered is meaningful (from the state file or a baseline)
	// delivered is the room sequence the order has reached: every message
	// up to it is shown, skipped as a duplicate or given up (holes).
	delivered uint64
	pending   map[uint64]pendingMsg
	// holdSince is when the oldest message still held back started to
	// wait (the gap timer's start); zero when nothing is held.
	holdSince time.Time
	gapReq    string          // outstanding gap request id
	holes     map[uint64]bool // skipped after gap_wait; shown late if they come
	holeReq   string          // outstanding request for the holes
	// activeAt is when the room last showed traffic (askTailWhenQuiet);
	// tailAsked is whether its tail was asked for since.
	activeAt  time.Time
	tailAsked bool
	holeAsked time.Time
	baseReq   string // outstanding baseline request id
	// lastSeq is the conversation's last sequence number as the room log
	// last listed it; unread counts DMs from others shown since /dms.
	lastSeq uint64
	unread  int
}

// pendingMsg is a message on its way to the screen, held back or not.
type pendingMsg struct {
	env    wire.Envelope
	via    string
	recvNS int64
	bytes  int
	dup    bool // holds a room sequence number for a message already shown
}

// maxHoles bounds the skipped room sequences remembered per conversation.
const maxHoles = 10000

// drain delivers the pending messages that continue the room order.
func (p *pipeline) drain(c *conv) {
	if !c.known {
		return
	}
	progressed := false
	for {
		m, ok := c.pending[c.delivered+1]
		if !ok {
			break
		}
		delete(c.pending, c.delivered+1)
		c.delivered++
		p.pos.changed()
		progressed = true
		if m.dup {
			p.logReceived(m, true)
			p.recorded(c, c.delivered)
			continue
		}
		p.deliver(c, m)
	}
	if len(c.pending) == 0 {
		c.holdSince = time.Time{}
	} else if progressed {
		c.holdSince = p.clock.Now()
	}
}

// minKey is the smallest key of m, which must not be empty.
func minKey[V any](m map[uint64]V) uint64 { return slices.Min(slices.Collect(maps.Keys(m))) }

// checkGap runs c's gap timer at now: a gap shows as a message held back
// in c.pending. After a quarter of gap_wait (at most 100 ms: a reordered
// delivery usually fills it sooner) the node asks the room log for the
// missing range; after gap_wait it gives up and shows what came after.
func (p *pipeline) checkGap(c *conv, now time.Time) {
	if len(c.pending) == 0 || c.holdSince.IsZero() {
		return
	}
	wait := p.cfg.GapWait
	held := now.Sub(c.holdSince)
	if !p.online && p.roomLog != roomLogAbsent {
		return // held until the room log can be asked again
	}
	if !c.known {
		// No baseline answer within gap_wait (or no room log to give
		// one): the order starts at the first message held.
		if held > wait || p.roomLog == roomLogAbsent {
			c.known, c.delivered = true, minKey(c.pending)-1
			c.baseReq = ""
			p.drain(c)
		}
		return
	}
	if c.gapReq == "" && held > min(wait/4, 100*time.Millisecond) && p.roomLog != roomLogAbsent {
		p.fetchGap(c)
	}
	if held > wait {
		p.giveUpGap(c)
	}
}

// fetchGap logs c's gap and asks the room log for the missing range.
func (p *pipeline) fetchGap(c *conv) {
	lo, missing, e := p.gapLog(c)
	e.Info("room sequence gap: fetching from the room log")
	c.gapReq = p.ask(request{conv: c.name, kind: reqGap, gapUpTo: lo - 1},
		wire.SyncRequest{AfterSeq: c.delivered, Limit: int(min(missing, 1000))})
}

// gapLog returns the first room sequence held after c's gap, how many are
// missing before it, and the entry that logs the gap.
func (p *pipeline) gapLog(c *conv) (lo, missing uint64, e *logrus.Entry) {
	lo = minKey(c.pending)
	missing = lo - c.delivered - 1
	return lo, missing, p.log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventGap, nodelog.FieldRoom: c.name,
		nodelog.FieldAfterSeq: c.delivered, nodelog.FieldMissing: missing})
}

// giveUpGap shows what came after c's gap once gap_wait has passed; the
// missing numbers become holes, still fetched and shown late if they come.
func (p *pipeline) giveUpGap(c *conv) {
	lo, _, e := p.gapLog(c)
	e.WithField(nodelog.FieldError, "not repaired within gap_wait").Warn("room sequence gap not repaired: showing what came after it")
	for r := c.delivered + 1; r < lo && len(c.holes) < maxHoles; r++ {
		c.holes[r] = true
	}
	c.delivered = lo - 1
	c.gapReq = ""
	p.drain(c)
}

// repairHoles asks the room log for the holes every 2 × gap_wait while any
// is missing: a gap request or its answer can itself be lost (a broker
// restart, a drop at the in-flight quota).
func (p *pipeline) repairHoles(c *conv, now time.Time) {
	if len(c.holes) == 0 || p.roomLog == roomLogAbsent || (c.holeReq != "" && now.Sub(c.holeAsked) < 2*p.cfg.GapWait) {
		return
	}
	delete(p.inFlight, c.holeReq)
	lo, hi := minKey(c.holes), slices.Max(slices.Collect(maps.Keys(c.holes)))
	c.holeAsked = now
	c.holeReq = p.ask(request{conv: c.name, kind: reqHole, gapUpTo: hi},
		wire.SyncRequest{AfterSeq: lo - 1, Limit: int(min(hi-lo+1, 1000))})
}

// askTailWhenQuiet asks the room log once whether anything came after what
// c has, when c has been quiet for gap_wait since its last traffic: a lost
// last message leaves no later one to show the gap.
func (p *pipeline) askTailWhenQuiet(c *conv, now time.Time) {
	if c.tailAsked || c.activeAt.IsZero() || now.Sub(c.activeAt) <= p.cfg.GapWait || !c.known ||
		len(c.pending) > 0 || c.gapReq != "" || p.roomLog != roomLogPresent {
		return
	}
	c.tailAsked = true
	p.catchUp(c.name)
}

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

// advance moves next past the numbers seen above it.
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
