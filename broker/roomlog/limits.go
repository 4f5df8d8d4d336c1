package roomlog

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/config"
)

// Refusal reasons, in logs ("reason") and /stats (room_log.refused), of
// messages acknowledged and discarded because they would break a bound.
const (
	// RefusedUnknownRecipient: a DM to a user the broker does not know.
	RefusedUnknownRecipient = "unknown_recipient"
	// RefusedMaxConversations: a new conversation past room_log.max_conversations.
	RefusedMaxConversations = "max_conversations"
	// RefusedUserConversations: its sender's new conversation past room_log.max_conversations_per_user.
	RefusedUserConversations = "max_conversations_per_user"
	// RefusedOversized: the stamped record would not fit limits.max_packet_size
	// less config.StampHeadroom (JSON escaping can make it six times the payload).
	RefusedOversized = "oversized_record"
)

// refusal is a bound's verdict on one message.
type refusal struct {
	reason string
	detail string
}

func (r *refusal) Error() string { return r.reason + ": " + r.detail }

// convLimits counts conversations against room_log.max_conversations(_per_user);
// user counts start with the broker, so the global cap bounds memory.
type convLimits struct {
	maxTotal, maxPerUser int

	mu      sync.Mutex // guards total and started; taken after no other lock
	total   int
	started map[string]int // user → conversations started; at most one entry per sender
}

// admit reports why user may not start a new conversation (isNew), or nil.
// Racing first messages can all pass: the caps hold to within the number
// of publishers at once.
func (c *convLimits) admit(user string, isNew bool) *refusal {
	if !isNew {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.maxTotal > 0 && c.total >= c.maxTotal {
		return &refusal{RefusedMaxConversations, fmt.Sprintf("the log holds %d conversations, the limit", c.total)}
	}
	if c.maxPerUser > 0 && c.started[user] >= c.maxPerUser {
		return &refusal{RefusedUserConversations, fmt.Sprintf("the sender started %d conversations, the limit", c.started[user])}
	}
	return nil
}

// created counts a conversation user's message started; user "" is another
// broker's, counted against the global cap only.
func (c *convLimits) created(user string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total++
	if user != "" {
		made(&c.started)[user]++
	}
}

// SetUserCheck installs the broker's answer to "does user exist?", so a DM to
// a made-up recipient starts no conversation kept in memory for good.
func (h *Hook) SetUserCheck(f func(user string) bool) { h.userExists.Store(&f) }

// admit applies the log's bounds to a message on t (last: its conversation's last seq).
func (h *Hook) admit(t wire.Topic, last uint64) *refusal {
	if t.Kind == wire.KindDM {
		if f := h.userExists.Load(); f != nil && !(*f)(t.Recipient) {
			return &refusal{RefusedUnknownRecipient, "no such user"}
		}
	}
	return h.convs.admit(t.User, last == 0)
}

// fits checks a stamped record against the largest packet the broker may send.
func (h *Hook) fits(data []byte) error {
	if h.maxRecord > 0 && len(data) > h.maxRecord {
		return &refusal{RefusedOversized, fmt.Sprintf("stamped record of %d bytes, the limit is %d", len(data), h.maxRecord)}
	}
	return nil
}

// refused counts and logs (rate-limited) a message a bound refused.
func (h *Hook) refused(clientID, topic string, bytes int, r *refusal) {
	h.refusals.add(r.reason)
	if ok, held := h.refusalLog.Allow(); ok {
		h.log.WithError(r).WithFields(logrus.Fields{"event": logevent.MessageRefused, "client_id": clipID(clientID), "topic": clipID(topic),
			"bytes": bytes, "reason": r.reason, "suppressed": held}).
			Warn("room log: message over a limit refused (MQTT 5: a reason code in its PUBACK; MQTT 3.1.1: acknowledged and discarded)")
	}
}

// refusalCounts counts refusals by reason, in refusalReasons' order.
type refusalCounts [len(refusalReasons)]atomic.Int64

var refusalReasons = [...]string{RefusedUnknownRecipient, RefusedMaxConversations, RefusedUserConversations, RefusedOversized}

func (c *refusalCounts) add(reason string) {
	if i := slices.Index(refusalReasons[:], reason); i >= 0 {
		c[i].Add(1)
	}
}

// snapshot returns every reason's count, zero ones included.
func (c *refusalCounts) snapshot() map[string]int64 {
	out := make(map[string]int64, len(refusalReasons))
	for i, r := range refusalReasons {
		out[r] = c[i].Load()
	}
	return out
}

// Refusal and throttling lines: a burst of logBurst, then one every refusalLogEvery.
const (
	refusalLogEvery = time.Minute
	logBurst        = 10
)

// clipID bounds client text (ids, topics) in a log line.
func clipID(s string) string {
	if len(s) > 256 {
		return s[:256] + "…"
	}
	return s
}

// maxRecordFor is the largest stamped record in maxPacket bytes (0: unbounded).
func maxRecordFor(maxPacket int) int {
	if maxPacket <= 0 {
		return 0
	}
	return max(maxPacket-config.StampHeadroom, 1)
}

// errPayloadTooLarge marks an invalid message over room_log.max_payload_bytes.
var errPayloadTooLarge = errors.New("payload too large")

// refusalAck is what OnPublish returns for a refused message: to an MQTT 5
// publisher at QoS 1 or 2, a packets.Code (unwrapped: Mochi v2.7.9 asserts its
// type) for a PUBACK with its reason; else CodeSuccessIgnore, as MQTT 3.1.1
// has no negative PUBACK and without one the client resends forever.
func refusalAck(cl *mqtt.Client, pk packets.Packet, code byte, reason string) packets.Code {
	if cl.Properties.ProtocolVersion < 5 || pk.FixedHeader.Qos == 0 {
		return packets.CodeSuccessIgnore
	}
	return packets.Code{Code: code, Reason: reason}
}

// invalidCode is the reason code of an invalid message.
func invalidCode(err error) byte {
	if errors.Is(err, errPayloadTooLarge) {
		return packets.ErrPacketTooLarge.Code // 0x95
	}
	return packets.ErrPayloadFormatInvalid.Code // 0x99
}

// refusalCode is the MQTT 5 PUBACK reason code of a refusal reason.
func refusalCode(reason string) byte {
	switch reason {
	case RefusedUnknownRecipient: // the topic names a recipient the broker does not know
		return packets.ErrTopicNameInvalid.Code // 0x90
	case RefusedMaxConversations, RefusedUserConversations: // a quota the sender reached
		return packets.ErrQuotaExceeded.Code // 0x97
	case RefusedOversized: // larger than what the broker may send
		return packets.ErrPacketTooLarge.Code // 0x95
	}
	return packets.ErrUnspecifiedError.Code
}
