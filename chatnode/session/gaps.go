package session

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// Room sequence gaps. A gap shows as a message held back in a
// conversation's pending set (order.go): checkGap, run on every tick, is
// where it is detected. After a short while (a quarter of gap_wait, at most
// 100 ms: a reordered delivery usually fills it sooner) the node asks the
// room log for the missing range; after gap_wait (the gap timer, measured
// from holdSince) it gives up and shows what came after, remembering the
// skipped numbers as holes that repairHoles keeps asking for.

// gapAskAfter is how long a gap may stay open before it is fetched.
func gapAskAfter(wait time.Duration) time.Duration { return min(wait/4, 100*time.Millisecond) }

// checkGap runs c's gap timer at now.
func (p *pipeline) checkGap(c *conv, now time.Time) {
	if len(c.pending) == 0 || c.holdSince.IsZero() {
		return
	}
	wait := p.cfg.GapWait
	held := now.Sub(c.holdSince)
	if !p.online && p.reqs.roomLog != roomLogAbsent {
		return // held until the room log can be asked again
	}
	if !c.known {
		// No baseline answer within gap_wait (or no room log to give
		// one): the order starts at the first message held.
		if held > wait || p.reqs.roomLog == roomLogAbsent {
			c.known, c.delivered = true, minKey(c.pending)-1
			c.baseReq = ""
			p.drain(c)
		}
		return
	}
	if c.gapReq == "" && held > gapAskAfter(wait) && p.reqs.roomLog != roomLogAbsent {
		p.fetchGap(c)
	}
	if held > wait {
		p.giveUpGap(c)
	}
}

// fetchGap logs the gap before c's first held message and asks the room
// log for the missing range.
func (p *pipeline) fetchGap(c *conv) {
	lo := minKey(c.pending)
	missing := lo - c.delivered - 1
	p.log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventGap, nodelog.FieldRoom: c.name,
		nodelog.FieldAfterSeq: c.delivered, nodelog.FieldMissing: missing}).Info("room sequence gap: fetching from the room log")
	c.gapReq = p.reqs.send(request{conv: c.name, kind: reqGap, after: c.delivered, gapUpTo: lo - 1},
		wire.SyncRequest{AfterSeq: c.delivered, Limit: int(min(missing, 1000))})
}

// giveUpGap shows what came after c's gap once gap_wait has passed; the
// missing numbers become holes, still fetched and shown late if they come.
func (p *pipeline) giveUpGap(c *conv) {
	lo := minKey(c.pending)
	missing := lo - c.delivered - 1
	p.log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventGap, nodelog.FieldRoom: c.name,
		nodelog.FieldAfterSeq: c.delivered, nodelog.FieldMissing: missing,
		nodelog.FieldError: "not repaired within gap_wait"}).Warn("room sequence gap not repaired: showing what came after it")
	for r := c.delivered + 1; r < lo && len(c.holes) < maxHoles; r++ {
		c.holes[r] = true
	}
	c.delivered = lo - 1
	c.gapReq = ""
	p.drain(c)
}

// repairHoles keeps asking the room log for the room sequences that gap_wait
// gave up on (what came after them is shown already), every 2 × gap_wait
// while any is missing: a gap request or its answer can itself be lost (a
// broker restart, a drop at the in-flight quota), and giving up would lose
// the message for good.
func (p *pipeline) repairHoles(c *conv, now time.Time) {
	if len(c.holes) == 0 || p.reqs.roomLog == roomLogAbsent || (c.holeReq != "" && now.Sub(c.holeAsked) < 2*p.cfg.GapWait) {
		return
	}
	p.reqs.forget(c.holeReq)
	lo, hi := minKey(c.holes), maxKey(c.holes)
	c.holeAsked = now
	c.holeReq = p.reqs.send(request{conv: c.name, kind: reqHole, after: lo - 1, gapUpTo: hi},
		wire.SyncRequest{AfterSeq: lo - 1, Limit: int(min(hi-lo+1, 1000))})
}

// askTailWhenQuiet asks the room log once whether anything came after what
// c has, when c has been quiet for gap_wait since its last traffic: a lost
// last message leaves no later one to show the gap.
func (p *pipeline) askTailWhenQuiet(c *conv, now time.Time) {
	if c.tailAsked || c.activeAt.IsZero() || now.Sub(c.activeAt) <= p.cfg.GapWait || !c.known ||
		len(c.pending) > 0 || c.gapReq != "" || p.reqs.roomLog != roomLogPresent {
		return
	}
	c.tailAsked = true
	p.catchUp(c.name)
}
