package session

import (
	"maps"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// handleReply matches a sync reply to its request and applies it by kind:
// handleList, showHistory, applyBaseline, or applyMessages for catch-up,
// gap and hole requests.
func (p *pipeline) handleReply(rep wire.SyncReply, recvNS int64) {
	req, ok := p.reqs.inFlight[rep.ReqID]
	if !ok {
		return // an answer to an earlier run or a forgotten request
	}
	delete(p.reqs.inFlight, rep.ReqID)
	p.roomLogSeen("the room log answered after all: catch-up is on")
	if req.kind == reqList {
		p.handleList(req, rep)
		return
	}
	e := p.log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventSync, nodelog.FieldRoom: rep.Conv,
		nodelog.FieldAfterSeq: req.sr.AfterSeq, nodelog.FieldCount: len(rep.Messages),
		nodelog.FieldDurationUS: p.clock.Now().Sub(req.sentAt).Microseconds()})
	if rep.Error != "" {
		e.WithField(nodelog.FieldError, rep.Error).Warn("sync refused")
		if req.kind == reqHistory {
			p.emit(Info{Text: "history refused: " + rep.Error})
		}
		if c := p.convs[req.conv]; c != nil && c.baseReq == rep.ReqID {
			c.baseReq = "" // asked again
		}
		return
	}
	e.Info("sync")
	switch c := p.convs[req.conv]; {
	case req.kind == reqHistory:
		p.showHistory(req, rep, recvNS)
	case c == nil: // left meanwhile
	case req.kind == reqBaseline:
		p.applyBaseline(c, req, rep, recvNS)
	default:
		p.applyMessages(c, req, rep, recvNS)
	}
}

// showHistory shows a /history answer as it is: not merged into the order.
func (p *pipeline) showHistory(req request, rep wire.SyncReply, recvNS int64) {
	_, _, isDM := wire.ParseDMConversation(req.conv)
	for _, env := range rep.Messages {
		p.emit(Message{Env: env, Conv: req.conv, Private: isDM, Via: nodelog.ViaHistory, RecvNS: recvNS})
	}
	if len(rep.Messages) == 0 {
		p.emit(Info{Text: "no history in " + req.conv})
	}
}

// applyBaseline starts the order of a conversation new to this node where
// its membership began: messages up to there are history (the last
// req.showN are shown), later ones are ours to receive.
func (p *pipeline) applyBaseline(c *conv, req request, rep wire.SyncReply, recvNS int64) {
	if c.baseReq == rep.ReqID {
		c.baseReq = ""
	}
	var msgs []wire.Envelope
	var joined uint64
	if !c.known {
		msgs, joined = p.startOrder(c, req.showN, rep)
	}
	for _, env := range msgs {
		via := nodelog.ViaHistory
		if env.RoomSeq > joined {
			via = nodelog.ViaSync
		}
		p.receive(c, pendingMsg{env: env, via: via, recvNS: recvNS, bytes: len(env.Body) + len(env.Pad)})
	}
	p.drain(c)
	// Messages since our subscription began are on their way: the room is
	// active, so its tail is asked for once it is quiet (a lost last one).
	if c.delivered < rep.LastSeq {
		c.activeAt, c.tailAsked = p.clock.Now(), false
	}
}

// startOrder sets c's position from a baseline answer: where our
// subscription began, or before the history to show. It returns the
// messages to receive and the room sequence the membership began after.
func (p *pipeline) startOrder(c *conv, showN int, rep wire.SyncReply) (msgs []wire.Envelope, joined uint64) {
	base := rep.LastSeq
	if rep.JoinedSeq != nil {
		base = min(base, *rep.JoinedSeq)
	}
	if len(c.pending) > 0 {
		base = min(base, minKey(c.pending)-1)
	}
	// The first of the node's own messages at or below base still awaiting
	// its echo: a resend after failover may be stored before the node's
	// SUBSCRIBE arrives; sent by a member, it and what follows are the
	// node's to receive, not history.
	own := slices.IndexFunc(rep.Messages, func(env wire.Envelope) bool {
		return env.RoomSeq <= base && env.From == p.me && p.awaitingEcho(env.ID)
	})
	if own >= 0 {
		base = rep.Messages[own].RoomSeq - 1
	}
	joined = base
	msgs = rep.Messages
	switch {
	case showN > 0 && len(msgs) > 0:
		if len(msgs) > showN {
			msgs = msgs[len(msgs)-showN:]
		}
		base = min(base, msgs[0].RoomSeq-1)
	case own >= 0:
		msgs = msgs[own:] // in room order, as the log answers
	default:
		msgs = nil
	}
	c.known, c.delivered = true, base
	p.pos.changed()
	return msgs, joined
}

// applyMessages receives the messages of a catch-up, gap or hole reply and
// asks for the next page while the log has more.
func (p *pipeline) applyMessages(c *conv, req request, rep wire.SyncReply, recvNS int64) {
	msgs := rep.Messages
	for _, env := range msgs {
		p.receive(c, pendingMsg{env: env, via: nodelog.ViaSync, recvNS: recvNS, bytes: len(env.Body) + len(env.Pad)})
	}
	if req.kind == reqGap && c.gapReq == rep.ReqID {
		c.gapReq = ""
	}
	if req.kind == reqHole {
		p.closeHoles(c, req, rep)
		return
	}
	if rep.More && len(msgs) > 0 {
		last := msgs[len(msgs)-1].RoomSeq
		if req.kind == reqCatchUp || last < req.gapUpTo {
			next := request{conv: req.conv, kind: req.kind, gapUpTo: req.gapUpTo}
			id := p.ask(next, wire.SyncRequest{AfterSeq: last})
			if req.kind == reqGap {
				c.gapReq = id
			}
		}
	}
}

// closeHoles forgets the holes a hole reply covered: those it did not hold
// are gone from the log (retention).
func (p *pipeline) closeHoles(c *conv, req request, rep wire.SyncReply) {
	if c.holeReq == rep.ReqID {
		c.holeReq = ""
	}
	upTo := rep.LastSeq
	if n := len(rep.Messages); n > 0 && rep.More {
		upTo = rep.Messages[n-1].RoomSeq
	}
	maps.DeleteFunc(c.holes, func(r uint64, _ bool) bool { return r > req.sr.AfterSeq && r <= upTo })
}

// handleList catches up every listed conversation that moved (one never
// seen from its start); a broker that cannot list gets the catch-up of
// every conversation this node knows.
func (p *pipeline) handleList(req request, rep wire.SyncReply) {
	e := p.log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventSync, nodelog.FieldCount: len(rep.Convs), nodelog.FieldList: true,
		nodelog.FieldDurationUS: p.clock.Now().Sub(req.sentAt).Microseconds()})
	if rep.Error != "" {
		e.WithField(nodelog.FieldError, rep.Error).Info("the room log lists no conversations; catching up the known ones")
		for _, name := range slices.Sorted(maps.Keys(p.convs)) {
			if p.convs[name].known {
				p.catchUp(name)
			}
		}
		return
	}
	e.Info("sync")
	for _, ci := range rep.Convs {
		p.catchUpListed(ci)
	}
	if n := len(rep.Convs); rep.More && n > 0 {
		p.ask(request{conv: rep.Convs[n-1].Conv, kind: reqList}, wire.SyncRequest{List: true, Rooms: req.sr.Rooms})
	}
}

// catchUpListed catches up one conversation of a List reply if it moved.
func (p *pipeline) catchUpListed(ci wire.ConvInfo) {
	_, _, dm := wire.ParseDMConversation(ci.Conv)
	c := p.convs[ci.Conv]
	switch {
	case c == nil && !dm:
		return // a room left meanwhile
	case c == nil:
		c = p.conv(ci.Conv)
	}
	c.lastSeq = max(c.lastSeq, ci.LastSeq)
	if !c.known {
		if !dm {
			return // a room new to this node: its baseline answers
		}
		c.known = true // all of a DM conversation is the user's
		p.pos.changed()
	}
	if ci.LastSeq > c.delivered {
		p.catchUp(c.name)
	}
}
