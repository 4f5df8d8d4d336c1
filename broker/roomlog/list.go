package roomlog

import (
	"maps"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
)

// maxListRooms bounds the rooms one List request may ask about.
const maxListRooms = 1000

// list answers a List request: every DM conversation user is a party to and
// each of the requested rooms user may read (others are left out, as a
// refused subscription would be), with their last sequence numbers, in key
// order after req.Conv, within the page's byte budget. A node catches each
// one up from its own position, 0 for a DM conversation it has never seen.
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

// merged returns a new field set with a's fields and then b's.
func merged(a, b logrus.Fields) logrus.Fields {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}
