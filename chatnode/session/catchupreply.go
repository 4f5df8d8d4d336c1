package session

import (
	"maps"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// Catch-up replies: handleReply matches a reply on the inbox to its request
// (catchup.go) and applies it by kind: a List reply in handleList, history
// in showHistory, a baseline in applyBaseline, and the messages of a
// catch-up, gap or hole request in applyMessages, which feeds them to the
// room order like live ones (receive.go) and asks for the next page.

func (p *pipeline) handleReply(rep wire.SyncReply, recvNS int64) {
	req, ok := p.reqs.take(rep.ReqID)
	if !ok {
		return // an answer to an earlier run or a forgotten request
	}
	p.roomLogSeen("the room log answered after all: catch-up is on")
	if req.kind == reqList {
		p.handleList(req, rep)
		return
	}
	e := p.log.WithFields(logrus.Fields{nodelog.FieldEvent: nodelog.EventSync, nodelog.FieldRoom: rep.Conv,
		nodelog.FieldAfterSeq: req.after, nodelog.FieldCount: len(rep.Messages),
		nodelog.FieldDurationUS: p.clock.Now().Sub(req.sentAt).Microseconds()})
	if rep.Error != "" {
		p.replyRefused(e, req, rep)
		return
	}
	e.Info("sync")
	if req.kind == reqHistory {
		p.showHistory(req, rep, recvNS)
		return
	}
	c := p.convs[req.conv]
	if c == nil {
		return
	}
	if req.kind == reqBaseline {
		p.applyBaseline(c, req, rep, recvNS)
		return
	}
	p.applyMessages(c, req, rep, recvNS)
}

// replyRefused logs a refused request and tells the user of a refused
// /history; a refused baseline may be asked again.
func (p *pipeline) replyRefused(e *logrus.Entry, req request, rep wire.SyncReply) {
	e.WithField(nodelog.FieldError, rep.Error).Warn("sync refused")
	if req.kind == reqHistory {
		p.emit(Info{Text: "history refused: " + rep.Error})
	}
	if c := p.convs[req.conv]; c != nil && c.baseReq == rep.ReqID {
		c.baseReq = ""
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
// its membership began. Messages up to there are history (the last
// req.showN are shown); the answer may already hold later ones, which are
// ours to receive.
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
	// Messages since our subscription began are on their way; if one
	// of them was lost, no later message may come to show the gap, so
	// the room counts as active: tick asks for its tail once it is quiet.
	if c.delivered < rep.LastSeq {
		c.activeAt, c.tailAsked = p.clock.Now(), false
	}
}

// startOrder sets c's position from a baseline answer: where our
// subscription began (later messages come live, perhaps after this reply,
// or by gap repair), or before the history to show. It returns the
// messages to receive and the room sequence the membership began after.
func (p *pipeline) startOrder(c *conv, showN int, rep wire.SyncReply) (msgs []wire.Envelope, joined uint64) {
	base := rep.LastSeq
	if rep.JoinedSeq != nil {
		base = min(base, *rep.JoinedSeq)
	}
	if lo := minKey(c.pending); len(c.pending) > 0 && lo-1 < base {
		base = lo - 1
	}
	own := p.ownUnconfirmed(rep.Messages, base)
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

// ownUnconfirmed returns the index of the first of msgs at or below base
// that is one of this node's own messages still waiting for its echo, or
// -1. The log can store a message before the sender's subscription to
// its room begins: a node whose first broker stalled before it subscribed
// sends it again to the next broker, which may store it before the node's
// SUBSCRIBE arrives. It was sent by a member, so it and what follows it
// are the node's to receive (and its echo confirms the send), not history.
func (p *pipeline) ownUnconfirmed(msgs []wire.Envelope, base uint64) int {
	for i, env := range msgs {
		if env.RoomSeq <= base && env.From == p.me && p.awaitingEcho(env.ID) {
			return i
		}
	}
	return -1
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
			next := request{conv: req.conv, kind: req.kind, after: last, gapUpTo: req.gapUpTo}
			id := p.reqs.send(next, wire.SyncRequest{AfterSeq: last})
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
	for r := range c.holes {
		if r > req.after && r <= upTo {
			delete(c.holes, r)
		}
	}
}

// handleList catches up every listed conversation that has messages this
// node has not handled: a DM conversation it has never seen from its start.
// A broker that cannot list (an error reply) gets the catch-up of every
// conversation this node knows instead.
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
		next := request{conv: rep.Convs[n-1].Conv, kind: reqList, rooms: req.rooms}
		p.reqs.send(next, wire.SyncRequest{List: true, Rooms: req.rooms})
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
