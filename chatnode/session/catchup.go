package session

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// roomLogState is whether the broker keeps a room log (absent: best-effort
// mode, no catch-up).
type roomLogState int

const (
	roomLogUnknown roomLogState = iota
	roomLogPresent
	roomLogAbsent
)

// requestKind is what a sync request is for.
type requestKind int

const (
	reqBaseline requestKind = iota // fresh conversation: where does it stand (and its history)
	reqCatchUp                     // everything after our last room sequence
	reqGap                         // a missing range seen in live traffic
	reqHistory                     // /history N: shown, not merged
	reqHole                        // room sequences given up on after gap_wait: still fetched, shown late
	reqList                        // the user's conversations and their last sequence numbers
)

// request is a sync request in flight, kept until its reply comes.
type request struct {
	conv    string
	kind    requestKind
	showN   int // baseline: show this many history messages
	sentAt  time.Time
	gapUpTo uint64
	sr      wire.SyncRequest // as sent, for a retry
	retries int
}

// maxSyncRetries bounds how often an unanswered request is sent again
// (every gap_wait): a reply is lost when the broker restarts as it is sent.
const maxSyncRetries = 5

// ask publishes a sync request without waiting (the pipeline must not
// block) and returns its id, which its reply on the inbox carries.
func (p *pipeline) ask(r request, sr wire.SyncRequest) string {
	p.reqN++
	id := strconv.FormatInt(p.boot, 36) + "-" + strconv.FormatUint(p.reqN, 36)
	sr.V, sr.ReqID, sr.Conv = wire.Version, id, r.conv
	r.sentAt, r.sr = p.clock.Now(), sr
	p.inFlight[id] = r
	if p.roomLog == roomLogUnknown && p.firstAsk.IsZero() {
		p.firstAsk = r.sentAt
	}
	payload, err := json.Marshal(sr)
	if err != nil {
		p.log.WithField(nodelog.FieldEvent, nodelog.EventSync).WithError(err).Error("sync request")
		return id
	}
	p.publishSync(payload)
	return id
}

// onConnected catches the conversations up after a (re)connect: a room new
// to this node asks where it stands, the rest one List request (handleList).
// A gap still held back gets a fresh gap_wait.
func (p *pipeline) onConnected() {
	p.online = true
	now := p.clock.Now()
	var rooms []string
	for _, name := range slices.Sorted(maps.Keys(p.convs)) {
		c := p.convs[name]
		if len(c.pending) > 0 && !c.holdSince.IsZero() {
			c.holdSince = now
		}
		if !c.known {
			p.catchUp(name)
			continue
		}
		if _, _, dm := wire.ParseDMConversation(name); !dm {
			rooms = append(rooms, name)
		}
	}
	p.ask(request{kind: reqList}, wire.SyncRequest{List: true, Rooms: rooms})
}

// onDisconnected stops gap_wait from running out while the room log cannot
// answer, so room order holds across broker restarts. A gap request in
// flight is lost with the connection and asked again once back.
func (p *pipeline) onDisconnected() {
	p.online = false
	for _, c := range p.convs {
		c.gapReq = ""
	}
}

// catchUp asks the room log for what conv missed since its position, or,
// new to this node, where it stands plus the configured history.
func (p *pipeline) catchUp(name string) {
	switch c := p.convs[name]; {
	case c == nil:
	case c.known:
		p.ask(request{conv: name, kind: reqCatchUp}, wire.SyncRequest{AfterSeq: c.delivered})
	case c.baseReq == "": // else asked already
		n := p.cfg.History
		c.baseReq = p.ask(request{conv: name, kind: reqBaseline, showN: n}, wire.SyncRequest{Last: max(n, baselineLookback)})
	}
}

func (p *pipeline) history(name string, n int) {
	if p.roomLog == roomLogAbsent {
		p.emit(Info{Text: "no history: this broker keeps no room log"})
		return
	}
	p.ask(request{conv: name, kind: reqHistory, showN: n}, wire.SyncRequest{Last: n})
}

// baselineLookback is the fewest records a baseline asks for: it finds the
// node's own messages stored before its subscription began (startOrder).
const baselineLookback = 16

// roomLogSeen records that a room log exists; news tells the user if the
// node had concluded there was none.
func (p *pipeline) roomLogSeen(news string) {
	if p.roomLog == roomLogAbsent {
		p.emit(Info{Text: news})
	}
	p.roomLog = roomLogPresent
}

// checkRoomLogSilence concludes there is no room log once the first request
// has gone unanswered for gap_wait.
func (p *pipeline) checkRoomLogSilence(now time.Time) {
	if p.roomLog != roomLogUnknown || p.firstAsk.IsZero() || now.Sub(p.firstAsk) <= p.cfg.GapWait {
		return
	}
	p.roomLog = roomLogAbsent
	p.log.WithField(nodelog.FieldEvent, nodelog.EventSync).WithField(nodelog.FieldError, "no reply from a room log").
		Warn("the broker keeps no room log (e.g. Mosquitto): no catch-up or history, delivery is best-effort")
	p.emit(Info{Text: "this broker keeps no room log: no catch-up or history, delivery is best-effort"})
}

// retryRequests sends again the requests unanswered for gap_wait (but
// history and holes, which have their own retry) and forgets the hopeless.
func (p *pipeline) retryRequests(now time.Time) {
	wait := p.cfg.GapWait
	for id, r := range p.inFlight {
		age := now.Sub(r.sentAt)
		if r.kind != reqHistory && r.kind != reqHole && age > wait && r.retries < maxSyncRetries && p.roomLog != roomLogAbsent {
			delete(p.inFlight, id)
			r.retries++
			nid := p.ask(r, r.sr)
			if c := p.convs[r.conv]; c != nil {
				if c.gapReq == id {
					c.gapReq = nid
				}
				if c.baseReq == id {
					c.baseReq = nid
				}
			}
			continue
		}
		if age > 10*wait+time.Minute {
			delete(p.inFlight, id)
		}
	}
}

// handleReply matches a sync reply to its request and applies it by kind.
func (p *pipeline) handleReply(rep wire.SyncReply, recvNS int64) {
	req, ok := p.inFlight[rep.ReqID]
	if !ok {
		return // an answer to an earlier run or a forgotten request
	}
	delete(p.inFlight, rep.ReqID)
	p.roomLogSeen("the room log answered after all: catch-up is on")
	if req.kind == reqList {
		p.handleList(req, rep)
		return
	}
	e := p.syncEntry(req, logrus.Fields{nodelog.FieldRoom: rep.Conv, nodelog.FieldAfterSeq: req.sr.AfterSeq, nodelog.FieldCount: len(rep.Messages)})
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

// syncEntry is the log entry of req's reply, with fields.
func (p *pipeline) syncEntry(req request, fields logrus.Fields) *logrus.Entry {
	fields[nodelog.FieldEvent], fields[nodelog.FieldDurationUS] = nodelog.EventSync, p.clock.Now().Sub(req.sentAt).Microseconds()
	return p.log.WithFields(fields)
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
		p.receiveSynced(c, env, via, recvNS)
	}
	p.drain(c)
	// Messages since our subscription began are on their way: the room is
	// active, so its tail is asked for once it is quiet (a lost last one).
	if c.delivered < rep.LastSeq {
		c.activeAt, c.tailAsked = p.clock.Now(), false
	}
}

// startOrder sets c's position from a baseline answer (where our
// subscription began, or before the history to show) and returns the
// messages to receive and the room sequence the membership began after.
func (p *pipeline) startOrder(c *conv, showN int, rep wire.SyncReply) (msgs []wire.Envelope, joined uint64) {
	base := rep.LastSeq
	if rep.JoinedSeq != nil {
		base = min(base, *rep.JoinedSeq)
	}
	if len(c.pending) > 0 {
		base = min(base, minKey(c.pending)-1)
	}
	// A resend after failover may be stored before the node's SUBSCRIBE
	// arrives: from the first own message at or below base still awaiting
	// its echo on, messages are the node's to receive, not history.
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

// receiveSynced receives env from a sync reply (its bytes: body and pad).
func (p *pipeline) receiveSynced(c *conv, env wire.Envelope, via string, recvNS int64) {
	p.receive(c, pendingMsg{env: env, via: via, recvNS: recvNS, bytes: len(env.Body) + len(env.Pad)})
}

// applyMessages receives the messages of a catch-up, gap or hole reply and
// asks for the next page while the log has more.
func (p *pipeline) applyMessages(c *conv, req request, rep wire.SyncReply, recvNS int64) {
	msgs := rep.Messages
	for _, env := range msgs {
		p.receiveSynced(c, env, nodelog.ViaSync, recvNS)
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

// handleList catches up every listed conversation that moved; a broker that
// cannot list gets the catch-up of every conversation this node knows.
func (p *pipeline) handleList(req request, rep wire.SyncReply) {
	e := p.syncEntry(req, logrus.Fields{nodelog.FieldCount: len(rep.Convs), nodelog.FieldList: true})
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
