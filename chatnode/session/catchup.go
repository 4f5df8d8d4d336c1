package session

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// roomLogState is whether the broker keeps a room log: unknown until a sync
// request is answered (present) or gap_wait passes without an answer
// (absent: best-effort mode, no catch-up).
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

// syncRequests are the sync requests in flight (sent on chat/sync/<user>,
// answered on the inbox: catchupreply.go) and whether the broker keeps a
// room log. The node asks on connect, for a room new to it, for a gap and
// for /history. Only the pipeline goroutine uses it.
type syncRequests struct {
	inFlight map[string]request
	n        uint64 // the last request's number
	roomLog  roomLogState
	firstAsk time.Time // the first request, for roomLogUnknown's timeout
}

// ask publishes a sync request without waiting (the pipeline must not
// block) and returns its id, which its reply carries.
func (p *pipeline) ask(r request, sr wire.SyncRequest) string {
	q := p.reqs
	q.n++
	id := strconv.FormatInt(p.boot, 36) + "-" + strconv.FormatUint(q.n, 36)
	sr.V, sr.ReqID, sr.Conv = wire.Version, id, r.conv
	r.sentAt, r.sr = p.clock.Now(), sr
	q.inFlight[id] = r
	if q.roomLog == roomLogUnknown && q.firstAsk.IsZero() {
		q.firstAsk = r.sentAt
	}
	payload, err := jsonMarshal(sr)
	if err != nil {
		p.log.WithField(nodelog.FieldEvent, nodelog.EventSync).WithError(err).Error("sync request")
		return id
	}
	p.publishSync(payload)
	return id
}

// onConnected catches the conversations up after a (re)connect: a room new
// to this node asks where it stands, the rest one List request, answered
// with the joined rooms and all the user's DM conversations (handleList). A
// gap still held back gets a fresh gap_wait.
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
	if p.reqs.roomLog == roomLogAbsent {
		p.emit(Info{Text: "no history: this broker keeps no room log"})
		return
	}
	p.ask(request{conv: name, kind: reqHistory, showN: n}, wire.SyncRequest{Last: n})
}

// baselineLookback is the fewest records a baseline asks for: beside the
// history, it finds the node's own messages stored before its subscription
// began (startOrder).
const baselineLookback = 16

// roomLogSeen records that a room log exists (a reply, or a message it
// stamped); news tells the user if the node had concluded there was none.
func (p *pipeline) roomLogSeen(news string) {
	if p.reqs.roomLog == roomLogAbsent {
		p.emit(Info{Text: news})
	}
	p.reqs.roomLog = roomLogPresent
}

// checkRoomLogSilence concludes that the broker keeps no room log when the
// first request has gone unanswered for gap_wait.
func (p *pipeline) checkRoomLogSilence(now time.Time) {
	q := p.reqs
	if q.roomLog != roomLogUnknown || q.firstAsk.IsZero() || now.Sub(q.firstAsk) <= p.cfg.GapWait {
		return
	}
	q.roomLog = roomLogAbsent
	p.log.WithField(nodelog.FieldEvent, nodelog.EventSync).WithField(nodelog.FieldError, "no reply from a room log").
		Warn("the broker keeps no room log (e.g. Mosquitto): no catch-up or history, delivery is best-effort")
	p.emit(Info{Text: "this broker keeps no room log: no catch-up or history, delivery is best-effort"})
}

// retryRequests sends again the requests unanswered for gap_wait (but
// history and holes, which have their own retry) and forgets the hopeless.
func (p *pipeline) retryRequests(now time.Time) {
	wait := p.cfg.GapWait
	for id, r := range p.reqs.inFlight {
		age := now.Sub(r.sentAt)
		if r.kind != reqHistory && r.kind != reqHole && age > wait && r.retries < maxSyncRetries && p.reqs.roomLog != roomLogAbsent {
			delete(p.reqs.inFlight, id)
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
			delete(p.reqs.inFlight, id)
		}
	}
}
