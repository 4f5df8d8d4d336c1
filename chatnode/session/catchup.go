package session

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// Catch-up: the node asks the broker's room log (sync requests on
// chat/sync/<user>, replies on its inbox) for what it missed: on connect
// (a List of its conversations, then a catch-up of each that moved), for a
// room new to it (a baseline: where the room stands, plus history), for a
// gap in live traffic (gaps.go) and for /history. This file sends and
// retries the requests; catchupreply.go applies the replies.

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
	after   uint64
	showN   int // baseline: show this many history messages
	sentAt  time.Time
	gapUpTo uint64
	sr      wire.SyncRequest // as sent, for a retry
	retries int
	rooms   []string // list: the rooms asked about
}

// maxSyncRetries bounds how often an unanswered catch-up, gap or baseline
// request is sent again (every gap_wait). A reply can be lost when the
// broker restarts or a session is taken over just as it is sent.
const maxSyncRetries = 5

// syncRequests numbers, sends and remembers the sync requests in flight,
// and knows whether the broker keeps a room log. Only the pipeline
// goroutine uses it.
type syncRequests struct {
	boot     int64
	publish  func(payload []byte)
	clock    clock
	log      *logrus.Entry
	inFlight map[string]request
	n        uint64
	roomLog  roomLogState
	firstAsk time.Time // the first request, for roomLogUnknown's timeout
}

func newSyncRequests(boot int64, publish func([]byte), c clock, log *logrus.Entry) *syncRequests {
	return &syncRequests{boot: boot, publish: publish, clock: c, log: log, inFlight: map[string]request{}}
}

// send publishes a sync request without waiting (the pipeline must not
// block) and returns its id; the reply is matched by it.
func (q *syncRequests) send(r request, sr wire.SyncRequest) string {
	q.n++
	id := strconv.FormatInt(q.boot, 36) + "-" + strconv.FormatUint(q.n, 36)
	sr.V, sr.ReqID, sr.Conv = wire.Version, id, r.conv
	r.sentAt, r.sr = q.clock.Now(), sr
	q.inFlight[id] = r
	if q.roomLog == roomLogUnknown && q.firstAsk.IsZero() {
		q.firstAsk = r.sentAt
	}
	payload, err := jsonMarshal(sr)
	if err != nil {
		q.log.WithField(nodelog.FieldEvent, nodelog.EventSync).WithError(err).Error("sync request")
		return id
	}
	q.publish(payload)
	return id
}

// take removes and returns the request a reply answers.
func (q *syncRequests) take(id string) (request, bool) {
	r, ok := q.inFlight[id]
	delete(q.inFlight, id)
	return r, ok
}

// forget drops a request whose reply no longer matters.
func (q *syncRequests) forget(id string) { delete(q.inFlight, id) }

// onConnected catches the user's conversations up after a (re)connect. A
// room new to this node asks where it stands (join semantics: history, then
// live); everything else comes from one List request, answered with every
// DM conversation of the user (also those this node has never seen: a first
// connect, a new device, a lost state dir) and the joined rooms, each with
// its last sequence number: handleList catches up those that moved. A gap
// still held back gets a fresh gap_wait from now.
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
	p.reqs.send(request{kind: reqList, rooms: rooms}, wire.SyncRequest{List: true, Rooms: rooms})
}

// onDisconnected stops gap_wait from running out while the room log cannot
// answer, so room order holds across broker restarts however long they
// take. A gap request in flight is lost with the connection: the gap is
// asked for again once the node is back.
func (p *pipeline) onDisconnected() {
	p.online = false
	for _, c := range p.convs {
		c.gapReq = ""
	}
}

// catchUp asks the room log for what conv missed: everything after our last
// room sequence, or, for a conversation new to this node, where it stands
// plus the configured history.
func (p *pipeline) catchUp(name string) {
	c := p.convs[name]
	if c == nil {
		return
	}
	if c.known {
		p.reqs.send(request{conv: name, kind: reqCatchUp, after: c.delivered}, wire.SyncRequest{AfterSeq: c.delivered})
		return
	}
	if c.baseReq != "" {
		return
	}
	n := p.cfg.History
	last := max(n, baselineLookback)
	c.baseReq = p.reqs.send(request{conv: name, kind: reqBaseline, showN: n}, wire.SyncRequest{Last: last})
}

func (p *pipeline) history(name string, n int) {
	if p.reqs.roomLog == roomLogAbsent {
		p.emit(Info{Text: "no history: this broker keeps no room log"})
		return
	}
	p.reqs.send(request{conv: name, kind: reqHistory, showN: n}, wire.SyncRequest{Last: n})
}

// baselineLookback is how many of a conversation's newest records a
// baseline asks for at least: beside the history to show, it finds the
// node's own messages that the log stored before the node's subscription
// to the conversation began (startOrder).
const baselineLookback = 16

// roomLogSeen records that a room log exists (a reply, or a message it
// stamped); news tells the user if the node had concluded there was none.
func (p *pipeline) roomLogSeen(news string) {
	if p.reqs.roomLog == roomLogPresent {
		return
	}
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

// retryRequests sends again the catch-up, gap and baseline requests
// unanswered for gap_wait (at most maxSyncRetries times), and forgets
// requests that never got an answer.
func (p *pipeline) retryRequests(now time.Time) {
	wait := p.cfg.GapWait
	for id, r := range p.reqs.inFlight {
		age := now.Sub(r.sentAt)
		if r.kind != reqHistory && r.kind != reqHole && age > wait && r.retries < maxSyncRetries && p.reqs.roomLog != roomLogAbsent {
			p.reqs.forget(id)
			r.retries++
			nid := p.reqs.send(r, r.sr)
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
			p.reqs.forget(id) // never answered; forget it
		}
	}
}
