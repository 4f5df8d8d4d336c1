package session

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/wire"
)

func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return b, nil
}

// Whether the broker keeps a room log: unknown until a sync request is
// answered (yes) or GapWait passes without an answer (no: best-effort mode).
const (
	logUnknown = iota
	logYes
	logNo
)

// Request purposes.
const (
	reqBaseline = iota // fresh conversation: where does it stand (and its history)
	reqCatchUp         // everything after our last room sequence
	reqGap             // a missing range seen in live traffic
	reqHistory         // /history N: shown, not merged
	reqHole            // room sequences given up on after gap_wait: still fetched, shown late
	reqList            // the user's conversations and their last sequence numbers
)

type request struct {
	conv    string
	kind    int
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

// conv is the ordering state of one conversation (room or DM).
type conv struct {
	name string
	// known: delivered is meaningful (from the state file or a baseline).
	known     bool
	delivered uint64
	pending   map[uint64]pendingMsg
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

type pendingMsg struct {
	env    wire.Envelope
	via    string
	recvNS int64
	bytes  int
	dup    bool // holds a room sequence number for a message already shown
}

type senderKey struct {
	from, conv string
	boot       int64
}

// senderTrack detects gaps in one sender's sequence in one conversation.
type senderTrack struct {
	next  uint64
	above map[uint64]bool
	since time.Time
}

// maxHoles bounds the skipped room sequences remembered per conversation.
const maxHoles = 10000

// pipeline owns all delivery state; only its goroutine touches it.
type pipeline struct {
	s       *Session
	log     *logrus.Entry
	in      *queue
	ctl     chan func()
	quit    chan struct{}
	stopped chan struct{}

	convs   map[string]*conv
	saved   map[string]uint64 // state file contents not yet claimed by a conv
	seen    *idSet
	senders map[senderKey]*senderTrack
	reqs    map[string]request
	reqN    uint64
	roomLog int
	// online is whether the connection is up: a gap is not given up on
	// while the room log cannot be asked.
	online     bool
	firstAsk   time.Time
	dirty      bool
	lastSave   time.Time
	dups       atomic.Uint64
	delivered  atomic.Uint64
	malformedN atomic.Uint64
	onDeliver  map[string]chan struct{}
}

func newPipeline(s *Session, state map[string]uint64) *pipeline {
	p := &pipeline{
		s: s, log: s.log, in: newQueue(), ctl: make(chan func(), 64),
		quit: make(chan struct{}), stopped: make(chan struct{}),
		convs: map[string]*conv{}, saved: state, seen: newIDSet(1 << 18),
		senders: map[senderKey]*senderTrack{}, reqs: map[string]request{},
		onDeliver: map[string]chan struct{}{},
	}
	for _, r := range s.rooms {
		p.join(r)
	}
	for k := range state {
		if _, _, ok := wire.ParseDMConversation(k); ok {
			p.conv(k)
		}
	}
	return p
}

// do runs f on the pipeline goroutine (or drops it after stop).
func (p *pipeline) do(f func()) {
	select {
	case p.ctl <- f:
	case <-p.stopped:
	}
}

func (p *pipeline) stop() {
	select {
	case <-p.quit:
	default:
		close(p.quit)
	}
	<-p.stopped
}

func (p *pipeline) tickEvery() time.Duration {
	d := p.s.cfg.GapWait / 20
	return min(max(d, 5*time.Millisecond), 100*time.Millisecond)
}

func (p *pipeline) run() {
	defer close(p.stopped)
	t := time.NewTicker(p.tickEvery())
	defer t.Stop()
	for {
		select {
		case <-p.in.ready:
			for _, m := range p.in.drain() {
				p.handle(m)
			}
		case f := <-p.ctl:
			f()
		case now := <-t.C:
			p.tick(now)
		case <-p.quit:
			for _, m := range p.in.drain() {
				p.handle(m)
			}
			p.save(true)
			return
		}
	}
}

// WaitDelivered returns a channel closed when the message with id has been
// delivered (shown) by the pipeline. Tests and piped sessions use it to keep
// the screen deterministic.
func (s *Session) WaitDelivered(id string) <-chan struct{} {
	ch := make(chan struct{})
	s.p.do(func() {
		if s.p.seen.has(id) {
			close(ch)
			return
		}
		s.p.onDeliver[id] = ch
	})
	return ch
}

func (p *pipeline) conv(name string) *conv {
	c := p.convs[name]
	if c == nil {
		c = &conv{name: name, pending: map[uint64]pendingMsg{}, holes: map[uint64]bool{}}
		if seq, ok := p.saved[name]; ok {
			c.known, c.delivered = true, seq
		}
		p.convs[name] = c
	}
	return c
}

func (p *pipeline) join(room string) { p.conv(room) }

func (p *pipeline) leave(room string) {
	delete(p.convs, room)
	delete(p.saved, room)
	p.dirty = true
}

// onConnected catches the user's conversations up after a (re)connect. A
// room new to this node asks where it stands (join semantics: history, then
// live); everything else comes from one List request, answered with every
// DM conversation of the user (also those this node has never seen: a first
// connect, a new device, a lost state dir) and the joined rooms, each with
// its last sequence number: handleList catches up those that moved. A gap
// still held back gets a fresh gap_wait from now.
func (p *pipeline) onConnected() {
	p.online = true
	now := time.Now()
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
	p.send(request{kind: reqList, rooms: rooms}, wire.SyncRequest{List: true, Rooms: rooms})
}

// handleList catches up every listed conversation that has messages this
// node has not handled: a DM conversation it has never seen from its start.
// A broker that cannot list (an error reply) gets the catch-up of every
// conversation this node knows instead.
func (p *pipeline) handleList(req request, rep wire.SyncReply) {
	e := p.log.WithFields(logrus.Fields{wire.FieldEvent: wire.EventSync, wire.FieldCount: len(rep.Convs), wire.FieldList: true,
		wire.FieldDurationUS: time.Since(req.sentAt).Microseconds()})
	if rep.Error != "" {
		e.WithField(wire.FieldError, rep.Error).Info("the room log lists no conversations; catching up the known ones")
		for _, name := range slices.Sorted(maps.Keys(p.convs)) {
			if p.convs[name].known {
				p.catchUp(name)
			}
		}
		return
	}
	e.Info("sync")
	for _, ci := range rep.Convs {
		_, _, dm := wire.ParseDMConversation(ci.Conv)
		c := p.convs[ci.Conv]
		switch {
		case c == nil && !dm:
			continue // a room left meanwhile
		case c == nil:
			c = p.conv(ci.Conv)
		}
		c.lastSeq = max(c.lastSeq, ci.LastSeq)
		if !c.known {
			if !dm {
				continue // a room new to this node: its baseline answers
			}
			c.known, p.dirty = true, true // all of a DM conversation is the user's
		}
		if ci.LastSeq > c.delivered {
			p.send(request{conv: c.name, kind: reqCatchUp, after: c.delivered}, wire.SyncRequest{AfterSeq: c.delivered})
		}
	}
	if n := len(rep.Convs); rep.More && n > 0 {
		next := request{conv: rep.Convs[n-1].Conv, kind: reqList, rooms: req.rooms}
		p.send(next, wire.SyncRequest{List: true, Rooms: req.rooms})
	}
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
		p.send(request{conv: name, kind: reqCatchUp, after: c.delivered}, wire.SyncRequest{AfterSeq: c.delivered})
		return
	}
	if c.baseReq != "" {
		return
	}
	n := p.s.cfg.History
	last := max(n, 1)
	c.baseReq = p.send(request{conv: name, kind: reqBaseline, showN: n}, wire.SyncRequest{Last: last})
}

func (p *pipeline) history(name string, n int) {
	if p.roomLog == logNo {
		p.s.onEvent(Info{Text: "no history: this broker keeps no room log"})
		return
	}
	p.send(request{conv: name, kind: reqHistory, showN: n}, wire.SyncRequest{Last: n})
}

// send publishes a sync request without waiting (the pipeline must not
// block); the reply is matched by its request id.
func (p *pipeline) send(r request, sr wire.SyncRequest) string {
	p.reqN++
	id := strconv.FormatInt(p.s.boot, 36) + "-" + strconv.FormatUint(p.reqN, 36)
	sr.V, sr.ReqID, sr.Conv = wire.Version, id, r.conv
	r.sentAt, r.sr = time.Now(), sr
	p.reqs[id] = r
	if p.roomLog == logUnknown && p.firstAsk.IsZero() {
		p.firstAsk = r.sentAt
	}
	payload, err := jsonMarshal(sr)
	if err != nil {
		p.log.WithField(wire.FieldEvent, wire.EventSync).WithField(wire.FieldError, err.Error()).Error("sync request")
		return id
	}
	select {
	case <-p.s.firstUp:
	default:
		if p.s.clean {
			return id // paho would wipe it at the first connect; tick asks again
		}
	}
	tok := p.s.client.Publish(wire.SyncTopic(p.s.me), 1, false, payload)
	go func() {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				p.log.WithField(wire.FieldEvent, wire.EventSync).WithField(wire.FieldError, err.Error()).Warn("sync request not sent")
			}
		case <-p.s.closing:
		}
	}()
	return id
}

func (p *pipeline) malformed(m inbound, err error) {
	p.malformedN.Add(1)
	p.log.WithField(wire.FieldEvent, wire.EventMalformed).WithField(wire.FieldTopic, m.topic).
		WithField(wire.FieldBytes, len(m.payload)).WithField(wire.FieldError, err.Error()).Warn("malformed message skipped")
}

func (p *pipeline) handle(m inbound) {
	t, err := wire.ParseTopic(m.topic)
	if err != nil {
		p.malformed(m, err)
		return
	}
	switch t.Kind {
	case wire.KindPresence:
		p.handlePresence(m, t)
	case wire.KindInbox:
		var rep wire.SyncReply
		if err := json.Unmarshal(m.payload, &rep); err != nil {
			p.malformed(m, fmt.Errorf("%w: sync reply: %w", wire.ErrMalformed, err))
			return
		}
		p.handleReply(rep, m.recvNS)
	case wire.KindRoom, wire.KindDM:
		env, err := wire.DecodeEnvelope(m.payload, max(p.s.cfg.MaxPayload, wire.MaxPayloadBytes))
		if err == nil {
			err = checkTopic(env, t)
		}
		if err != nil {
			p.malformed(m, err)
			return
		}
		name := wire.Conversation(t)
		c := p.convs[name]
		if c == nil {
			if t.Kind == wire.KindRoom {
				return // a late delivery for a room we left
			}
			c = p.conv(name)
			if !c.known && env.RoomSeq > 0 {
				// A DM conversation new to this node, stamped by a room
				// log: all of it is the user's, from its first message.
				c.known, p.dirty = true, true
				p.send(request{conv: name, kind: reqCatchUp}, wire.SyncRequest{})
			} else {
				p.catchUp(name) // where the conversation stands, so this message need not wait gap_wait
			}
		}
		p.receive(c, pendingMsg{env: env, via: wire.ViaLive, recvNS: m.recvNS, bytes: len(m.payload)})
	default:
		p.malformed(m, fmt.Errorf("unexpected %s topic", t.Kind))
	}
}

// checkTopic refuses envelopes whose fields contradict their topic (a user
// publishing as someone else, or into another room).
func checkTopic(env wire.Envelope, t wire.Topic) error {
	if env.From != t.User {
		return fmt.Errorf("%w: from %q on %s's topic", wire.ErrMalformed, env.From, t.User)
	}
	if t.Kind == wire.KindRoom && env.Room != t.Room {
		return fmt.Errorf("%w: room %q on room %s's topic", wire.ErrMalformed, env.Room, t.Room)
	}
	if t.Kind == wire.KindDM && env.To != t.Recipient {
		return fmt.Errorf("%w: to %q on %s's DM topic", wire.ErrMalformed, env.To, t.Recipient)
	}
	return nil
}

func (p *pipeline) handlePresence(m inbound, t wire.Topic) {
	if len(m.payload) == 0 {
		return // a cleared retained message
	}
	pr, err := wire.DecodePresence(m.payload)
	if err == nil && pr.User != t.User {
		err = fmt.Errorf("%w: presence of %q on %s's topic", wire.ErrMalformed, pr.User, t.User)
	}
	if err != nil {
		p.malformed(m, err)
		return
	}
	p.s.mu.Lock()
	prev, had := p.s.presence[pr.User]
	p.s.presence[pr.User] = pr
	p.s.mu.Unlock()
	var was []string
	if had && prev.Status == wire.Online {
		was = prev.Rooms
	}
	var now []string
	if pr.Status == wire.Online {
		now = pr.Rooms
	}
	ch := PresenceChange{Presence: pr, Retained: m.retained}
	for _, r := range now {
		if !slices.Contains(was, r) {
			ch.Joined = append(ch.Joined, r)
		}
	}
	for _, r := range was {
		if !slices.Contains(now, r) {
			ch.Left = append(ch.Left, r)
		}
	}
	if had && prev.Status == pr.Status && len(ch.Joined) == 0 && len(ch.Left) == 0 {
		return
	}
	if pr.User == p.s.me && pr.Status == wire.Offline && !m.retained && pr.Device != p.s.clientID {
		go p.s.onlineAgain() // another device of ours went, and took our presence with it
	}
	if pr.User != p.s.me {
		p.log.WithField(wire.FieldEvent, wire.EventPresence).WithField(wire.FieldUser, pr.User).WithField(wire.FieldStatus, pr.Status).Info("presence")
	}
	p.s.onEvent(ch)
}

// receive runs one message through dedup and room-order hold-back.
func (p *pipeline) receive(c *conv, m pendingMsg) {
	if m.env.From == p.s.me {
		p.s.echoed(m.env.ID)
	}
	if m.env.RoomSeq > 0 && p.roomLog != logYes {
		// Stamped by a room log: there is one, even if it has not answered
		// yet; unanswered requests are retried.
		if p.roomLog == logNo {
			p.s.onEvent(Info{Text: "the broker has a room log after all: catch-up is on"})
		}
		p.roomLog = logYes
	}
	r := m.env.RoomSeq
	if p.seen.has(m.env.ID) {
		if _, held := c.pending[r]; r > 0 && c.known && r > c.delivered && !held {
			// One message at two room sequence numbers (stored twice, e.g. a
			// resend racing its original): the second fills its place in
			// the order without being shown again.
			m.dup = true
			c.pending[r] = m
			p.drain(c)
			return
		}
		p.logReceived(m, true)
		return
	}
	if r == 0 { // no room log: deliver in arrival order
		p.seen.add(m.env.ID)
		p.deliver(c, m)
		return
	}
	if c.known && r <= c.delivered {
		if !c.holes[r] {
			p.logReceived(m, true)
			return
		}
		delete(c.holes, r)
		p.seen.add(m.env.ID)
		p.deliver(c, m) // late, after gap_wait gave up on it
		return
	}
	if _, ok := c.pending[r]; ok {
		p.logReceived(m, true)
		return
	}
	if m.via == wire.ViaLive {
		c.activeAt, c.tailAsked = time.Now(), false
	}
	p.seen.add(m.env.ID)
	c.pending[r] = m
	if c.holdSince.IsZero() {
		c.holdSince = time.Now()
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
		p.dirty = true
		progressed = true
		if m.dup {
			p.logReceived(m, true)
			continue
		}
		p.deliver(c, m)
	}
	if len(c.pending) == 0 {
		c.holdSince = time.Time{}
	} else if progressed {
		c.holdSince = time.Now()
	}
}

func (p *pipeline) deliver(c *conv, m pendingMsg) {
	if ch, ok := p.onDeliver[m.env.ID]; ok {
		close(ch)
		delete(p.onDeliver, m.env.ID)
	}
	_, _, isDM := wire.ParseDMConversation(c.name)
	if isDM && m.env.From == p.s.me && m.via != wire.ViaHistory {
		return // our own DM, recovered from the log to close the sequence
	}
	if m.via != wire.ViaHistory && m.env.Seq > 0 {
		p.trackSender(c.name, m)
	}
	if isDM && m.via != wire.ViaHistory {
		c.unread++
	}
	p.logReceived(m, false)
	p.s.onEvent(Message{Env: m.env, Conv: c.name, Private: isDM, Via: m.via, RecvNS: m.recvNS, Bytes: m.bytes})
}

func (p *pipeline) logReceived(m pendingMsg, dup bool) {
	if dup {
		p.dups.Add(1)
	} else {
		p.delivered.Add(1)
	}
	convKey, conv := wire.FieldRoom, m.env.Room
	if m.env.To != "" {
		convKey, conv = wire.FieldTo, m.env.To
	}
	// One map for all fields: every WithField copies the entry's map.
	p.log.WithFields(logrus.Fields{
		wire.FieldEvent: wire.EventReceived, wire.FieldFrom: m.env.From, wire.FieldID: m.env.ID,
		wire.FieldBoot: m.env.Boot, wire.FieldSeq: m.env.Seq, wire.FieldRoomSeq: m.env.RoomSeq,
		wire.FieldSentNS: m.env.SentNS, wire.FieldRecvNS: m.recvNS,
		wire.FieldLatencyUS: (m.recvNS - m.env.SentNS) / 1000, wire.FieldBytes: m.bytes,
		wire.FieldDuplicate: dup, wire.FieldVia: m.via, convKey: conv,
	}).Info("received")
}

// trackSender detects gaps in a sender's own sequence. Deliveries without a
// room log arrive slightly reordered (paho runs handlers concurrently), so a
// missing number is reported only when it is still missing after GapWait.
func (p *pipeline) trackSender(convName string, m pendingMsg) {
	k := senderKey{from: m.env.From, conv: convName, boot: m.env.Boot}
	tr := p.senders[k]
	seq := m.env.Seq
	if tr == nil {
		p.senders[k] = &senderTrack{next: seq + 1, above: map[uint64]bool{}}
		return
	}
	switch {
	case seq < tr.next:
		return // late (after a reported gap) or first seen out of order
	case seq == tr.next:
		tr.next++
		for tr.above[tr.next] {
			delete(tr.above, tr.next)
			tr.next++
		}
		if len(tr.above) == 0 {
			tr.since = time.Time{}
		}
	default:
		tr.above[seq] = true
		if tr.since.IsZero() {
			tr.since = time.Now()
		}
	}
}

func (p *pipeline) tick(now time.Time) {
	wait := p.s.cfg.GapWait
	if p.roomLog == logUnknown && !p.firstAsk.IsZero() && now.Sub(p.firstAsk) > wait {
		p.roomLog = logNo
		p.log.WithField(wire.FieldEvent, wire.EventSync).WithField(wire.FieldError, "no reply from a room log").
			Warn("the broker keeps no room log (e.g. Mosquitto): no catch-up or history, delivery is best-effort")
		p.s.onEvent(Info{Text: "this broker keeps no room log: no catch-up or history, delivery is best-effort"})
	}
	for _, c := range p.convs {
		if len(c.pending) == 0 || c.holdSince.IsZero() {
			continue
		}
		held := now.Sub(c.holdSince)
		if !p.online && p.roomLog != logNo {
			continue // held until the room log can be asked again
		}
		if !c.known {
			if held > wait || p.roomLog == logNo {
				c.known, c.delivered = true, minKey(c.pending)-1
				c.baseReq = ""
				p.drain(c)
			}
			continue
		}
		lo := minKey(c.pending)
		if c.gapReq == "" && held > min(wait/4, 100*time.Millisecond) && p.roomLog != logNo {
			missing := lo - c.delivered - 1
			p.log.WithFields(logrus.Fields{wire.FieldEvent: wire.EventGap, wire.FieldRoom: c.name,
				wire.FieldAfterSeq: c.delivered, wire.FieldMissing: missing}).Info("room sequence gap: fetching from the room log")
			c.gapReq = p.send(request{conv: c.name, kind: reqGap, after: c.delivered, gapUpTo: lo - 1},
				wire.SyncRequest{AfterSeq: c.delivered, Limit: int(min(missing, 1000))})
		}
		if held > wait {
			missing := lo - c.delivered - 1
			p.log.WithFields(logrus.Fields{wire.FieldEvent: wire.EventGap, wire.FieldRoom: c.name,
				wire.FieldAfterSeq: c.delivered, wire.FieldMissing: missing,
				wire.FieldError: "not repaired within gap_wait"}).Warn("room sequence gap not repaired: showing what came after it")
			for r := c.delivered + 1; r < lo && len(c.holes) < maxHoles; r++ {
				c.holes[r] = true
			}
			c.delivered = lo - 1
			c.gapReq = ""
			p.drain(c)
		}
	}
	for _, c := range p.convs {
		p.repairHoles(c, now)
		if !c.tailAsked && !c.activeAt.IsZero() && now.Sub(c.activeAt) > wait && c.known &&
			len(c.pending) == 0 && c.gapReq == "" && p.roomLog == logYes {
			c.tailAsked = true
			p.send(request{conv: c.name, kind: reqCatchUp, after: c.delivered}, wire.SyncRequest{AfterSeq: c.delivered})
		}
	}
	for k, tr := range p.senders {
		if len(tr.above) == 0 || now.Sub(tr.since) <= wait {
			continue
		}
		lo := minKey(tr.above)
		e := p.log.WithFields(logrus.Fields{wire.FieldEvent: wire.EventGap, wire.FieldFrom: k.from,
			wire.FieldBoot: k.boot, wire.FieldAfterSeq: tr.next - 1, wire.FieldMissing: lo - tr.next})
		if _, _, ok := wire.ParseDMConversation(k.conv); ok {
			e = e.WithField(wire.FieldTo, p.s.me)
		} else {
			e = e.WithField(wire.FieldRoom, k.conv)
		}
		e.Warn("sender sequence gap")
		tr.next = lo
		for tr.above[tr.next] {
			delete(tr.above, tr.next)
			tr.next++
		}
		tr.since = time.Time{}
		if len(tr.above) > 0 {
			tr.since = now
		}
	}
	for id, r := range p.reqs {
		age := now.Sub(r.sentAt)
		if r.kind != reqHistory && r.kind != reqHole && age > wait && r.retries < maxSyncRetries && p.roomLog != logNo {
			delete(p.reqs, id)
			r.retries++
			nid := p.send(r, r.sr)
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
			delete(p.reqs, id) // never answered; forget it
		}
	}
	p.save(false)
}

// repairHoles keeps asking the room log for the room sequences that gap_wait
// gave up on (what came after them is shown already), every 2 × gap_wait
// while any is missing: a gap request or its answer can itself be lost (a
// broker restart, a drop at the in-flight quota), and giving up would lose
// the message for good.
func (p *pipeline) repairHoles(c *conv, now time.Time) {
	if len(c.holes) == 0 || p.roomLog == logNo || (c.holeReq != "" && now.Sub(c.holeAsked) < 2*p.s.cfg.GapWait) {
		return
	}
	delete(p.reqs, c.holeReq)
	lo, hi := minKey(c.holes), maxKey(c.holes)
	c.holeAsked = now
	c.holeReq = p.send(request{conv: c.name, kind: reqHole, after: lo - 1, gapUpTo: hi},
		wire.SyncRequest{AfterSeq: lo - 1, Limit: int(min(hi-lo+1, 1000))})
}

func maxKey[V any](m map[uint64]V) uint64 {
	var hi uint64
	for k := range m {
		hi = max(hi, k)
	}
	return hi
}

func minKey[V any](m map[uint64]V) uint64 {
	first := true
	var lo uint64
	for k := range m {
		if first || k < lo {
			lo, first = k, false
		}
	}
	return lo
}

func (p *pipeline) handleReply(rep wire.SyncReply, recvNS int64) {
	req, ok := p.reqs[rep.ReqID]
	if !ok {
		return // an answer to an earlier run or a forgotten request
	}
	delete(p.reqs, rep.ReqID)
	if p.roomLog != logYes {
		if p.roomLog == logNo {
			p.s.onEvent(Info{Text: "the room log answered after all: catch-up is on"})
		}
		p.roomLog = logYes
	}
	if req.kind == reqList {
		p.handleList(req, rep)
		return
	}
	e := p.log.WithFields(logrus.Fields{wire.FieldEvent: wire.EventSync, wire.FieldRoom: rep.Conv,
		wire.FieldAfterSeq: req.after, wire.FieldCount: len(rep.Messages),
		wire.FieldDurationUS: time.Since(req.sentAt).Microseconds()})
	if rep.Error != "" {
		e.WithField(wire.FieldError, rep.Error).Warn("sync refused")
		if req.kind == reqHistory {
			p.s.onEvent(Info{Text: "history refused: " + rep.Error})
		}
		if c := p.convs[req.conv]; c != nil && c.baseReq == rep.ReqID {
			c.baseReq = ""
		}
		return
	}
	e.Info("sync")
	if req.kind == reqHistory {
		for _, env := range rep.Messages {
			_, _, isDM := wire.ParseDMConversation(req.conv)
			p.s.onEvent(Message{Env: env, Conv: req.conv, Private: isDM, Via: wire.ViaHistory, RecvNS: recvNS})
		}
		if len(rep.Messages) == 0 {
			p.s.onEvent(Info{Text: "no history in " + req.conv})
		}
		return
	}
	c := p.convs[req.conv]
	if c == nil {
		return
	}
	msgs := rep.Messages
	if req.kind == reqBaseline {
		// Messages up to where the membership began are history; the
		// answer may already hold later ones, which are ours to receive.
		var joined uint64
		if c.baseReq == rep.ReqID {
			c.baseReq = ""
		}
		if !c.known {
			// Start where our subscription began: later messages come live
			// (perhaps after this reply) or by gap repair.
			base := rep.LastSeq
			if rep.JoinedSeq != nil {
				base = min(base, *rep.JoinedSeq)
			}
			if lo := minKey(c.pending); len(c.pending) > 0 && lo-1 < base {
				base = lo - 1
			}
			joined = base
			if n := req.showN; n > 0 && len(msgs) > 0 {
				if len(msgs) > n {
					msgs = msgs[len(msgs)-n:]
				}
				base = min(base, msgs[0].RoomSeq-1)
			} else {
				msgs = nil
			}
			c.known, c.delivered = true, base
			p.dirty = true
		} else {
			msgs = nil
		}
		for _, env := range msgs {
			via := wire.ViaHistory
			if env.RoomSeq > joined {
				via = wire.ViaSync
			}
			p.receive(c, pendingMsg{env: env, via: via, recvNS: recvNS, bytes: len(env.Body) + len(env.Pad)})
		}
		p.drain(c)
		// Messages since our subscription began are on their way; if one
		// of them was lost, no later message may come to show the gap, so
		// the room counts as active: tick asks for its tail once it is quiet.
		if c.delivered < rep.LastSeq {
			c.activeAt, c.tailAsked = time.Now(), false
		}
		return
	}
	for _, env := range msgs {
		p.receive(c, pendingMsg{env: env, via: wire.ViaSync, recvNS: recvNS, bytes: len(env.Body) + len(env.Pad)})
	}
	if req.kind == reqGap && c.gapReq == rep.ReqID {
		c.gapReq = ""
	}
	if req.kind == reqHole {
		if c.holeReq == rep.ReqID {
			c.holeReq = ""
		}
		// What the log skipped over in its answer is gone (retention).
		upTo := rep.LastSeq
		if n := len(msgs); n > 0 && rep.More {
			upTo = msgs[n-1].RoomSeq
		}
		for r := range c.holes {
			if r > req.after && r <= upTo {
				delete(c.holes, r)
			}
		}
		return
	}
	if rep.More && len(msgs) > 0 {
		last := msgs[len(msgs)-1].RoomSeq
		if req.kind == reqCatchUp || last < req.gapUpTo {
			next := request{conv: req.conv, kind: req.kind, after: last, gapUpTo: req.gapUpTo}
			id := p.send(next, wire.SyncRequest{AfterSeq: last})
			if req.kind == reqGap {
				c.gapReq = id
			}
		}
	}
}

// save writes the state file when something changed (at most every 200 ms,
// and always when force is set).
func (p *pipeline) save(force bool) {
	if !p.dirty || p.s.cfg.StateDir == "" || (!force && time.Since(p.lastSave) < 200*time.Millisecond) {
		return
	}
	out := map[string]uint64{}
	for name, c := range p.convs {
		if c.known && c.delivered > 0 {
			out[name] = c.delivered
		}
	}
	if err := saveState(p.s.cfg.StateDir, p.s.me, p.s.device, out); err != nil {
		p.log.WithField(wire.FieldError, err.Error()).Error("save state")
		return
	}
	p.dirty, p.lastSave = false, time.Now()
}

// DMSummary describes one DM conversation of the user, for /dms.
type DMSummary struct {
	Conv string
	// Peer is the other party.
	Peer string
	// Messages is the conversation's last sequence number (both
	// directions), as far as this node knows.
	Messages uint64
	// Unread counts the peer's messages shown since the last DMs call.
	Unread int
}

// DMs lists the user's DM conversations known to this node (after a connect
// to a broker with a room log: all of them), sorted by peer, and resets
// their unread counts. It returns nil when ctx ends or the session stopped.
func (s *Session) DMs(ctx context.Context) []DMSummary {
	out := make(chan []DMSummary, 1)
	s.p.do(func() {
		var list []DMSummary
		for _, name := range slices.Sorted(maps.Keys(s.p.convs)) {
			a, b, ok := wire.ParseDMConversation(name)
			if !ok {
				continue
			}
			c := s.p.convs[name]
			peer := a
			if a == s.me {
				peer = b
			}
			list = append(list, DMSummary{Conv: name, Peer: peer, Messages: max(c.lastSeq, c.delivered), Unread: c.unread})
			c.unread = 0
		}
		out <- list
	})
	select {
	case l := <-out:
		return l
	case <-ctx.Done():
	case <-s.p.stopped:
	}
	return nil
}

// Stats are the session's delivery counters.
type Stats struct {
	// Delivered counts messages shown (live, sync and history).
	Delivered uint64
	// Duplicates counts deliveries suppressed as already seen.
	Duplicates uint64
	// Malformed counts payloads skipped as malformed.
	Malformed uint64
}

// Stats returns a snapshot of the delivery counters.
func (s *Session) Stats() Stats {
	return Stats{Delivered: s.p.delivered.Load(), Duplicates: s.p.dups.Load(), Malformed: s.p.malformedN.Load()}
}
