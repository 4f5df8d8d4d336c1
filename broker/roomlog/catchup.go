package roomlog

import (
	"encoding/json"
	"errors"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"
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
		h.send(user, readers, reply, merged(fields, logrus.Fields{"list": true, "count": len(reply.Convs), "more": reply.More}))
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
	h.send(user, readers, reply, merged(fields, logrus.Fields{"conv": req.Conv, "after_seq": req.AfterSeq, "last": req.Last,
		"count": len(reply.Messages), "more": reply.More}))
}

// send publishes a reply on user's inbox, charged to readers (the clients it
// is queued for, see syncBudget), and logs it with fields.
func (h *Hook) send(user string, readers []string, reply wire.SyncReply, fields logrus.Fields) {
	payload, err := json.Marshal(reply)
	if err == nil {
		h.budget.charge(readers, len(payload)) // before: Mochi may write it at once
		// QoS 0: a reply is only useful to a connected node (it asks again
		// after a reconnect), and at QoS 1 Mochi would count it against
		// the node's in-flight quota, drop it there silently when the node
		// is behind (which is when it asks), and write it to the session
		// store.
		if err = h.srv.Publish(wire.InboxTopic(user), payload, false, 0); err != nil {
			h.budget.charge(readers, -len(payload))
		}
	}
	if err != nil {
		h.log.WithFields(fields).WithError(err).Error("room log: sync reply not sent")
		return
	}
	h.syncs.Add(1)
	h.log.WithFields(fields).Debug("sync served")
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

// pageBudget is the record bytes one page to cl may carry: two payloads,
// within the broker's largest record and the Maximum Packet Size cl set
// (MQTT 5), so a page is never a packet Mochi may not send. A page always
// carries its first record, so a single record over cl's maximum is still
// dropped (counted as packet_too_large).
func (h *Hook) pageBudget(cl *mqtt.Client) int {
	budget := h.cfg.MaxPayload * 2
	if h.maxRecord > 0 {
		budget = min(budget, h.maxRecord)
	}
	if m := int(cl.Properties.Props.MaximumPacketSize); m > 0 {
		budget = min(budget, max(m-config.StampHeadroom, 1))
	}
	return budget
}

// page fills reply with the next page for req, bounded by the page size and
// by budget bytes of records.
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
