package broker

import (
	"maps"
	"slices"
	"strings"

	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/distchat/distchat/broker/wire"
)

// requeuePage is how many records one read of the room log returns.
const requeuePage = 500

// owedSession is one stored session being recovered.
type owedSession struct {
	id      string
	filters []string         // its chat subscriptions at QoS 1 or more
	used    map[uint16]bool  // packet ids of its stored messages in flight
	have    map[convSeq]bool // the chat messages among them
	room    int              // messages in flight it may still take (<0: no limit)
	next    uint16           // the next packet id to try
	out     []storage.Message
}

// convSeq names a room log record: its conversation and sequence number.
type convSeq struct {
	conv string
	seq  uint64
}

// requeue returns, for every stored session that outlives its connection,
// the chat messages the marks say it is owed, as QoS 1 messages in flight
// for Mochi to resend when it resumes. None is given twice; a session takes
// at most maxInflight (0: no limit), oldest first, as Mochi's own queue
// does. sessions is how many sessions were owed something.
func requeue(rl roomRecords, marks sessionMarks, clients []storage.Client, subs []storage.Subscription,
	stored []storage.Message, maxInflight int) (out []storage.Message, sessions int) {
	owed := owedSessions(clients, subs, stored, maxInflight)
	if len(owed) == 0 {
		return nil, 0
	}
	positions := rl.Routed()
	convs := slices.Sorted(maps.Keys(positions))
	for _, s := range owed {
		for _, conv := range convs {
			if !convMayMatch(conv, s.filters) {
				continue
			}
			from := marks.Routed[conv]
			var queued []uint64
			if ms := marks.Sessions[s.id]; ms != nil {
				queued = ms.Queued[conv]
			}
			for _, seq := range queued {
				if seq <= from {
					s.take(rl, conv, seq-1, seq)
				}
			}
			s.take(rl, conv, from, positions[conv])
		}
		if len(s.out) > 0 {
			sessions++
			out = append(out, s.out...)
		}
	}
	return out, sessions
}

// owedSessions are the stored persistent sessions with chat subscriptions
// at QoS 1 or more, in client id order.
func owedSessions(clients []storage.Client, subs []storage.Subscription, stored []storage.Message, maxInflight int) []*owedSession {
	byID := map[string]*owedSession{}
	for _, c := range clients {
		if sessionEnds(c.ProtocolVersion, c.Clean, c.Properties.SessionExpiryInterval) {
			continue
		}
		byID[c.ID] = &owedSession{id: c.ID, used: map[uint16]bool{}, have: map[convSeq]bool{}, room: -1, next: 1}
	}
	for _, sub := range subs {
		if s := byID[sub.Client]; s != nil && sub.Qos > 0 && chatFilter(sub.Filter) {
			s.filters = append(s.filters, sub.Filter)
		}
	}
	for _, m := range stored {
		s := byID[m.Client]
		if s == nil {
			continue
		}
		s.used[m.PacketID] = true
		if conv, seq, ok := chatRecord(m.TopicName, m.Payload); ok {
			s.have[convSeq{conv, seq}] = true
		}
	}
	var out []*owedSession
	for _, s := range byID {
		if len(s.filters) == 0 {
			continue
		}
		if maxInflight > 0 {
			s.room = max(maxInflight-len(s.used), 0)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *owedSession) int { return strings.Compare(a.id, b.id) })
	return out
}

// take adds conv's records after after and up to upTo that s's filters
// match, while s has room.
func (s *owedSession) take(rl roomRecords, conv string, after, upTo uint64) {
	for after < upTo && s.room != 0 {
		recs, err := rl.Records(conv, after, int(min(upTo-after, requeuePage)))
		if err != nil || len(recs) == 0 {
			return // retention dropped them, or the log failed: nothing more to give
		}
		for _, r := range recs {
			after = r.Seq
			if r.Seq > upTo || s.room == 0 {
				return
			}
			s.add(conv, r.Seq, r.TimeNS, r.Data)
		}
	}
}

// add queues a record s's filters match and s does not hold already.
func (s *owedSession) add(conv string, seq uint64, timeNS int64, data []byte) {
	key := convSeq{conv, seq}
	if s.have[key] {
		return
	}
	topic, ok := recordTopic(data)
	if !ok || !slices.ContainsFunc(s.filters, func(f string) bool { return filterMatches(f, strings.Split(topic, "/")) }) {
		return
	}
	id, ok := s.packetID()
	if !ok {
		s.room = 0
		return
	}
	s.have[key] = true
	s.out = append(s.out, storage.Message{
		Client:      s.id,
		TopicName:   topic,
		Payload:     data,
		FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: 1},
		Created:     timeNS / 1e9, // Mochi expires it by this, as the message routed then
		PacketID:    id,
	})
	if s.room > 0 {
		s.room--
	}
}

// packetID returns a packet identifier s does not use yet.
func (s *owedSession) packetID() (uint16, bool) {
	for range 1 << 16 {
		id := s.next
		s.next++
		if s.next == 0 {
			s.next = 1
		}
		if id != 0 && !s.used[id] {
			s.used[id] = true
			return id, true
		}
	}
	return 0, false
}

// recordTopic is the topic a stamped record was routed on.
func recordTopic(data []byte) (string, bool) {
	e, err := wire.DecodeEnvelope(data, len(data)+1)
	switch {
	case err != nil:
		return "", false
	case e.Room != "":
		return wire.RoomTopic(e.Room, e.From), true
	case e.To != "":
		return wire.DMTopic(e.To, e.From), true
	}
	return "", false
}

// chatFilter reports whether filter can match a room message or a DM.
func chatFilter(filter string) bool {
	return filterMatches(filter, []string{wire.Root, wire.RoomsLevel, "", ""}) ||
		filterMatches(filter, []string{wire.Root, wire.DMLevel, "", ""})
}

// convMayMatch reports whether any of filters can match a topic of conv:
// chat/rooms/<room>/<anyone> for a room, either direction for a DM.
func convMayMatch(conv string, filters []string) bool {
	var topics [][]string
	if a, b, ok := wire.ParseDMConversation(conv); ok {
		topics = [][]string{{wire.Root, wire.DMLevel, a, b}, {wire.Root, wire.DMLevel, b, a}}
	} else {
		topics = [][]string{{wire.Root, wire.RoomsLevel, conv, ""}}
	}
	for _, f := range filters {
		for _, t := range topics {
			if filterMatches(f, t) {
				return true
			}
		}
	}
	return false
}

// filterMatches reports whether an MQTT topic filter matches a topic's
// levels, where an empty level stands for any name.
func filterMatches(filter string, topic []string) bool {
	if strings.HasPrefix(filter, "$") {
		return false // $share/... and $SYS: not a session's own chat subscription
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "#" {
			return true
		}
		if i >= len(topic) || (l != "+" && topic[i] != "" && l != topic[i]) {
			return false
		}
	}
	return len(levels) == len(topic)
}
