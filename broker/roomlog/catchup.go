package roomlog

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/wire"
)

// serveSync answers one catch-up request with one page on chat/inbox/<user>.
func (h *Hook) serveSync(cl *mqtt.Client, pk packets.Packet, t wire.Topic) {
	user := t.User
	fields := logrus.Fields{"event": logevent.Sync, "client_id": cl.ID, "user": user}
	if name := string(cl.Properties.Username); name != "" && name != user {
		h.deny(fields, "sync topic of another user")
		return
	}
	readers := h.inboxReaders(user)
	if h.budget.over(append(readers, cl.ID)) {
		h.throttled(fields)
		return
	}
	var req wire.SyncRequest
	if err := json.Unmarshal(pk.Payload, &req); err != nil || req.V != wire.Version || len(req.ReqID) > 128 {
		h.deny(fields, "malformed sync request")
		return
	}
	reply := wire.SyncReply{V: wire.Version, ReqID: req.ReqID, Conv: req.Conv, Messages: []wire.Envelope{}}
	if req.List {
		h.list(&reply, user, req)
		h.send(user, readers, reply, fields, logrus.Fields{"list": true, "count": len(reply.Convs), "more": reply.More})
		return
	}
	if err := h.mayAccess(user, req.Conv); err != nil {
		h.deny(fields, err.Error())
		reply.Error = err.Error()
	} else {
		h.page(&reply, req, h.pageBudget(cl))
		if req.Last > 0 {
			if seq, ok := h.joins.at(cl.ID, req.Conv); ok {
				reply.JoinedSeq = &seq
			}
		}
	}
	h.send(user, readers, reply, fields, logrus.Fields{"conv": req.Conv, "after_seq": req.AfterSeq, "last": req.Last,
		"count": len(reply.Messages), "more": reply.More})
}

// send publishes a reply on user's inbox, charged to readers (see syncBudget), and logs it.
func (h *Hook) send(user string, readers []string, reply wire.SyncReply, fields, more logrus.Fields) {
	payload, _ := json.Marshal(reply)      // plain data: never fails
	h.budget.charge(readers, len(payload)) // before: Mochi may write it at once
	// QoS 0: only a connected node wants it, and at QoS 1 Mochi drops
	// it silently at a full in-flight quota, when the node is behind.
	err := h.srv.Publish(wire.InboxTopic(user), payload, false, 0)
	log := h.log.WithFields(fields).WithFields(more)
	if err != nil {
		h.budget.charge(readers, -len(payload))
		log.WithError(err).Error("room log: sync reply not sent")
		return
	}
	h.syncs.Add(1)
	log.Debug("sync served")
}

func (h *Hook) deny(fields logrus.Fields, reason string) {
	h.syncDenied.Add(1)
	h.log.WithFields(fields).WithField("reason", reason).Warn("room log: sync refused")
}

// mayAccess reports whether user may read conversation conv.
func (h *Hook) mayAccess(user, conv string) error {
	if a, b, ok := wire.ParseDMConversation(conv); ok {
		if user != a && user != b {
			return errors.New("not a party to this conversation")
		}
		return nil
	}
	if err := wire.ValidateName("room", conv); err != nil {
		return err
	}
	if f := h.mayRead.Load(); f != nil && !(*f)(user, conv) {
		return errors.New("not permitted to read this room")
	}
	return nil
}

// pageBudget is the record bytes a page to cl may carry: two payloads,
// within the largest record and cl's MQTT 5 Maximum Packet Size, so Mochi
// may send it (a page always carries its first record).
func (h *Hook) pageBudget(cl *mqtt.Client) int {
	budget := h.cfg.MaxPayload * 2
	if h.maxRecord > 0 {
		budget = min(budget, h.maxRecord)
	}
	if m := int(cl.Properties.Props.MaximumPacketSize); m > 0 {
		budget = min(budget, maxRecordFor(m))
	}
	return budget
}

// page fills reply with req's next page, within the page size and budget bytes.
func (h *Hook) page(reply *wire.SyncReply, req wire.SyncRequest, budget int) {
	limit := h.cfg.PageSize
	if req.Limit > 0 && req.Limit < limit {
		limit = req.Limit
	}
	var recs []Record
	var err error
	if req.Last > 0 {
		recs, err = h.store.Newest(req.Conv, min(req.Last, limit))
	} else {
		recs, err = h.store.Read(req.Conv, req.AfterSeq, limit)
	}
	reply.LastSeq = h.store.Last(req.Conv)
	if err != nil {
		reply.Error = "room log read failed"
		h.log.WithError(err).WithField("conv", req.Conv).Error("room log: read failed")
		return
	}
	for _, r := range recs {
		var e wire.Envelope
		if err := json.Unmarshal(r.Data, &e); err != nil {
			h.log.WithError(err).WithFields(logrus.Fields{"conv": req.Conv, "seq": r.Seq}).Error("room log: unreadable record skipped")
			continue
		}
		if budget -= len(r.Data); budget < 0 && len(reply.Messages) > 0 {
			break
		}
		reply.Messages = append(reply.Messages, e)
	}
	if n := len(reply.Messages); n > 0 && req.Last == 0 {
		reply.More = reply.Messages[n-1].RoomSeq < reply.LastSeq
	}
}

// maxListRooms bounds the rooms one List request may ask about.
const maxListRooms = 1000

// list answers a List request: user's DM conversations and the requested
// rooms user may read, with their last seqs, in key order after req.Conv.
func (h *Hook) list(reply *wire.SyncReply, user string, req wire.SyncRequest) {
	keys := h.dms.of(user)
	for _, room := range req.Rooms[:min(len(req.Rooms), maxListRooms)] {
		if h.mayAccess(user, room) == nil && !slices.Contains(keys, room) {
			keys = append(keys, room)
		}
	}
	slices.Sort(keys)
	budget := h.cfg.MaxPayload // a listing stays well within max_packet_size
	for _, conv := range keys {
		if req.Conv != "" && conv <= req.Conv {
			continue
		}
		if budget -= len(conv) + 32; budget < 0 && len(reply.Convs) > 0 {
			reply.More = true
			break
		}
		reply.Convs = append(reply.Convs, wire.ConvInfo{Conv: conv, LastSeq: h.store.Last(conv)})
	}
}

// dmIndex knows each user's DM conversations (from the log's keys at start), so
// a node catches up on those it never saw (new device, lost state).
type dmIndex struct {
	mu    sync.RWMutex // guards users; taken after no other lock
	users map[string]map[string]struct{}
}

// add records conv under both its parties; a room name is ignored.
func (x *dmIndex) add(conv string) {
	a, b, ok := wire.ParseDMConversation(conv)
	if !ok {
		return
	}
	x.mu.RLock()
	_, known := x.users[a][conv]
	x.mu.RUnlock()
	if known {
		return // the common case: every message of a known conversation
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	inner(&x.users, a)[conv] = struct{}{}
	inner(&x.users, b)[conv] = struct{}{}
}

// of returns user's DM conversation keys, sorted.
func (x *dmIndex) of(user string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return slices.Sorted(maps.Keys(x.users[user]))
}

// joins remembers, per client and room, the last seq when the subscription
// began (every later message reaches the node): the answer to a Last
// request, as the current last counts messages still on their way.
type joins struct {
	mu  sync.Mutex                   // guards pos; taken after no other lock
	pos map[string]map[string]uint64 // client id → room → last seq at subscribe
}

// roomOfFilter returns the room of a member's filter chat/rooms/<room>/+.
func roomOfFilter(filter string) (string, bool) {
	rest, ok := strings.CutPrefix(filter, wire.Root+"/"+wire.RoomsLevel+"/")
	if !ok {
		return "", false
	}
	room, ok := strings.CutSuffix(rest, "/+")
	if !ok || wire.ValidateName("room", room) != nil {
		return "", false
	}
	return room, true
}

// subscribed records a subscription's position; a repeated SUBSCRIBE keeps the first.
func (j *joins) subscribed(client, room string, last uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	pos := inner(&j.pos, client)
	if _, ok := pos[room]; !ok {
		pos[room] = last
	}
}

func (j *joins) unsubscribed(client, room string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.pos[client], room)
}

// forget drops a client's positions when its session ends.
func (j *joins) forget(client string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.pos, client)
}

func (j *joins) at(client, room string) (uint64, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	seq, ok := j.pos[client][room]
	return seq, ok
}
