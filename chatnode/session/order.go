package session

import (
	"math"
	"time"

	"github.com/distchat/distchat/broker/wire"
)

// Room order: a conversation stamped by the broker's room log is shown in
// room sequence order. A message that does not continue the order waits in
// pending (hold-back) until the missing ones come (live, or fetched by the
// gap repair in gaps.go) or gap_wait gives up on them; drain releases what
// continues the order.

// conv is the ordering state of one conversation (room or DM).
type conv struct {
	name string
	// known: delivered is meaningful (from the state file or a baseline).
	known bool
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
	// activeAt is when the room last showed traffic: a live message, or a
	// baseline answer counting messages still on their way. Once it has
	// been quiet for gap_wait the node asks the log once whether anything
	// came after what it has (tailAsked): a lost last message leaves no
	// later one to show the gap.
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

// hold keeps m back until the room order reaches it, and starts the gap
// timer if nothing was held yet.
func (p *pipeline) hold(c *conv, m pendingMsg) {
	c.pending[m.env.RoomSeq] = m
	if c.holdSince.IsZero() {
		c.holdSince = p.clock.Now()
	}
	p.drain(c)
}

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

// maxKey is m's largest key (0 when m is empty).
func maxKey[V any](m map[uint64]V) uint64 {
	var hi uint64
	for k := range m {
		hi = max(hi, k)
	}
	return hi
}

// minKey is m's smallest key (math.MaxUint64 when m is empty).
func minKey[V any](m map[uint64]V) uint64 {
	lo := uint64(math.MaxUint64)
	for k := range m {
		lo = min(lo, k)
	}
	return lo
}
