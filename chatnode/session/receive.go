package session

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/jsonlog"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// handle dispatches every inbound payload by topic.
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
		p.handleChat(m, t)
	default:
		p.malformed(m, fmt.Errorf("unexpected %s topic", t.Kind))
	}
}

func (p *pipeline) malformed(m inbound, err error) {
	p.malformedN.Add(1)
	p.log.WithField(nodelog.FieldEvent, nodelog.EventMalformed).WithField(nodelog.FieldTopic, m.topic).
		WithField(nodelog.FieldBytes, len(m.payload)).WithError(err).Warn("malformed message skipped")
}

// handleChat decodes a live room or DM message and receives it.
func (p *pipeline) handleChat(m inbound, t wire.Topic) {
	env, err := wire.DecodeEnvelope(m.payload, max(p.cfg.MaxPayload, wire.MaxPayloadBytes))
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
			// A DM conversation new to this node, from a room log: all
			// of it is the user's.
			c.known = true
			p.pos.changed()
		}
		p.catchUp(name) // where the conversation stands, so this message need not wait gap_wait
	}
	p.receive(c, pendingMsg{env: env, via: nodelog.ViaLive, recvNS: m.recvNS, bytes: len(m.payload)})
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

// receive runs one message through dedup and room-order hold-back.
func (p *pipeline) receive(c *conv, m pendingMsg) {
	if m.env.From == p.me {
		p.echoed(m.env.ID)
	}
	if m.env.RoomSeq > 0 {
		p.roomLogSeen("the broker has a room log after all: catch-up is on")
	}
	r := m.env.RoomSeq
	if p.seen.has(m.env.ID) {
		if _, held := c.pending[r]; r > 0 && c.known && r > c.delivered && !held {
			// One message at two room sequences (a resend racing its
			// original): the second fills its place unshown.
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
	if m.via == nodelog.ViaLive {
		c.activeAt, c.tailAsked = p.clock.Now(), false
	}
	p.seen.add(m.env.ID)
	c.pending[r] = m // held back until the room order reaches it
	if c.holdSince.IsZero() {
		c.holdSince = p.clock.Now() // the gap timer starts
	}
	p.drain(c)
}

// deliver shows m: its "received" line, then the Message event.
func (p *pipeline) deliver(c *conv, m pendingMsg) {
	if ch, ok := p.onDeliver[m.env.ID]; ok {
		close(ch)
		delete(p.onDeliver, m.env.ID)
	}
	_, _, isDM := wire.ParseDMConversation(c.name)
	if isDM && m.env.From == p.me && m.via != nodelog.ViaHistory {
		return // our own DM, recovered from the log to close the sequence
	}
	if m.via != nodelog.ViaHistory && m.env.Seq > 0 {
		p.senders.track(c.name, m.env, p.clock.Now())
	}
	if isDM && m.via != nodelog.ViaHistory {
		c.unread++
	}
	p.logReceived(m, false)
	p.emit(Message{Env: m.env, Conv: c.name, Private: isDM, Via: m.via, RecvNS: m.recvNS, Bytes: m.bytes})
	p.recorded(c, m.env.RoomSeq)
}

// recorded makes a shown delivery's position durable where the mode asks.
func (p *pipeline) recorded(c *conv, seq uint64) {
	if err := p.pos.recorded(c.name, seq); err != nil {
		p.log.WithError(err).Error("save position")
	}
}

// logReceived writes and counts the "received" line of m.
func (p *pipeline) logReceived(m pendingMsg, dup bool) {
	if dup {
		p.dups.Add(1)
	}
	p.received.write(m, dup)
}

// idSet remembers the most recent message ids (FIFO): dedup in bounded memory.
type idSet struct {
	m    map[string]struct{}
	ring []string
	pos  int
}

func newIDSet(capacity int) *idSet {
	return &idSet{m: make(map[string]struct{}, 1024), ring: make([]string, capacity)}
}

func (s *idSet) has(id string) bool {
	_, ok := s.m[id]
	return ok
}

func (s *idSet) add(id string) {
	if _, ok := s.m[id]; ok {
		return
	}
	if old := s.ring[s.pos]; old != "" {
		delete(s.m, old)
	}
	s.ring[s.pos] = id
	s.m[id] = struct{}{}
	s.pos = (s.pos + 1) % len(s.ring)
}

// receivedLog writes the "received" line of every delivery and duplicate,
// which a run's analysis counts. Where the logger allows it (what chatnode
// sets up with -log) a jsonlog.Fixed writes it without logrus's per-line
// copies; otherwise logrus does. The bytes are the same either way.
type receivedLog struct {
	log *logrus.Entry
	// room and dm write the lines of room messages and of DMs (their last
	// key differs); nil when the logger needs logrus.
	room, dm *jsonlog.Fixed
	fields   logrus.Fields // reused for every line through logrus (WithFields copies it)
}

// receivedKeys are the keys of a "received" line, in the order write
// passes their values; the last is the room's name or a DM's recipient.
var receivedKeys = []string{nodelog.FieldEvent, nodelog.FieldFrom, nodelog.FieldID, nodelog.FieldBoot, nodelog.FieldSeq, nodelog.FieldRoomSeq,
	nodelog.FieldSentNS, nodelog.FieldRecvNS, nodelog.FieldLatencyUS, nodelog.FieldBytes, nodelog.FieldDuplicate, nodelog.FieldVia}

func newReceivedLog(log *logrus.Entry) *receivedLog {
	r := &receivedLog{log: log, fields: make(logrus.Fields, 16)}
	room, errRoom := jsonlog.NewFixed(log, logrus.InfoLevel, "received", append(slices.Clip(receivedKeys), nodelog.FieldRoom)...)
	dm, errDM := jsonlog.NewFixed(log, logrus.InfoLevel, "received", append(slices.Clip(receivedKeys), nodelog.FieldTo)...)
	if errRoom == nil && errDM == nil { // else ErrNotFixed: through logrus
		r.room, r.dm = room, dm
	}
	return r
}

func (r *receivedLog) write(m pendingMsg, dup bool) {
	fx, last := r.room, m.env.Room
	if m.env.To != "" {
		fx, last = r.dm, m.env.To
	}
	if fx == nil {
		r.viaLogrus(m, dup)
		return
	}
	err := fx.Line(time.Now(), jsonlog.String(nodelog.EventReceived), jsonlog.String(m.env.From), jsonlog.String(m.env.ID),
		jsonlog.Int(m.env.Boot), jsonlog.Uint(m.env.Seq), jsonlog.Uint(m.env.RoomSeq), jsonlog.Int(m.env.SentNS),
		jsonlog.Int(m.recvNS), jsonlog.Int((m.recvNS-m.env.SentNS)/1000), jsonlog.Int(int64(m.bytes)), jsonlog.Bool(dup),
		jsonlog.String(m.via), jsonlog.String(last))
	if err != nil {
		// As logrus does; the batched output reports it again on close.
		fmt.Fprintf(os.Stderr, "Failed to write to log, %v\n", err)
	}
}

func (r *receivedLog) viaLogrus(m pendingMsg, dup bool) {
	f := r.fields
	clear(f)
	for i, v := range [...]any{nodelog.EventReceived, m.env.From, m.env.ID, m.env.Boot, m.env.Seq, m.env.RoomSeq,
		m.env.SentNS, m.recvNS, (m.recvNS - m.env.SentNS) / 1000, m.bytes, dup, m.via} {
		f[receivedKeys[i]] = v
	}
	if m.env.To != "" {
		f[nodelog.FieldTo] = m.env.To
	} else {
		f[nodelog.FieldRoom] = m.env.Room
	}
	r.log.WithFields(f).Info("received")
}
