package session

import (
	"maps"
	"slices"
	"time"

	"github.com/distchat/distchat/broker/wire"
)

// conv is the ordering state of one conversation (room or DM). A
// conversation stamped by the room log is shown in room sequence order: a
// message that does not continue it waits in pending (hold-back) until the
// missing ones come (live or by gap repair, gaps.go) or gap_wait gives up.
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
