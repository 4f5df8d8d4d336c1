package wire

import (
	"fmt"
	"strings"
)

// The topic scheme, written down once: every program uses these helpers only.
//
//	chat/rooms/<room>/<sender>      room message; members subscribe chat/rooms/<room>/+
//	chat/dm/<recipient>/<sender>    direct message; only <recipient> subscribes chat/dm/<recipient>/+
//	chat/presence/<user>            retained presence (online/offline)
//	chat/sync/<user>                catch-up requests from <user> to the broker's room log
//	chat/inbox/<user>               catch-up replies, readable by <user> only
const (
	Root           = "chat"
	RoomsLevel     = "rooms"
	DMLevel        = "dm"
	PresenceLevel  = "presence"
	SyncLevel      = "sync"
	InboxLevel     = "inbox"
	PresenceFilter = "chat/presence/+"
	AllChatFilter  = "chat/#"
)

// RoomTopic is the topic sender publishes room messages on.
func RoomTopic(room, sender string) string {
	return Root + "/" + RoomsLevel + "/" + room + "/" + sender
}

// RoomFilter is the subscription that receives every sender's messages in room.
func RoomFilter(room string) string { return Root + "/" + RoomsLevel + "/" + room + "/+" }

// DMTopic is the topic sender publishes a direct message to recipient on.
func DMTopic(recipient, sender string) string {
	return Root + "/" + DMLevel + "/" + recipient + "/" + sender
}

// DMFilter is the subscription that receives every direct message to recipient.
func DMFilter(recipient string) string { return Root + "/" + DMLevel + "/" + recipient + "/+" }

// PresenceTopic is the retained topic carrying user's presence.
func PresenceTopic(user string) string { return Root + "/" + PresenceLevel + "/" + user }

// SyncTopic is where user sends catch-up requests to the broker's room log.
func SyncTopic(user string) string { return Root + "/" + SyncLevel + "/" + user }

// InboxTopic is where the broker answers user's catch-up requests.
func InboxTopic(user string) string { return Root + "/" + InboxLevel + "/" + user }

// Kind tells which part of the scheme a topic belongs to.
type Kind int

// The kinds of topic in the scheme. KindUnknown is anything else.
const (
	KindUnknown Kind = iota
	KindRoom
	KindDM
	KindPresence
	KindSync
	KindInbox
)

// String names the kind for logs and errors.
func (k Kind) String() string {
	if k > KindUnknown && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

var kindNames = [...]string{KindRoom: "room", KindDM: "dm", KindPresence: "presence", KindSync: "sync", KindInbox: "inbox"}

// Topic is a parsed topic name of the scheme.
type Topic struct {
	Kind      Kind
	Room      string // KindRoom only
	Recipient string // KindDM only
	User      string // the sender of a room message or DM, else the topic's owner
}

// topicKinds gives each kind level its Kind and how many levels its topics have.
var topicKinds = map[string]struct {
	kind   Kind
	levels int
}{RoomsLevel: {KindRoom, 4}, DMLevel: {KindDM, 4}, PresenceLevel: {KindPresence, 3}, SyncLevel: {KindSync, 3}, InboxLevel: {KindInbox, 3}}

// ParseTopic splits a concrete topic name into its parts and validates each
// name (outside chat/: KindUnknown and an error). Its errors name the part
// that breaks the scheme, so the broker can tell a client why it refused a publish.
func ParseTopic(topic string) (Topic, error) {
	var buf [maxTopicLevels]string
	parts, n := splitLevels(topic, buf[:0])
	if parts[0] != Root {
		return Topic{}, fmt.Errorf("topic %q is not in the chat/ scheme", topic)
	}
	if n < 2 {
		return Topic{}, fmt.Errorf("topic %q: no kind level after chat/", topic)
	}
	k, ok := topicKinds[parts[1]]
	switch {
	case !ok:
		return Topic{}, fmt.Errorf("topic %q: unknown kind %q (want rooms, dm, presence, sync or inbox)", topic, parts[1])
	case n != k.levels:
		return Topic{}, fmt.Errorf("topic %q: chat/%s topics have %d levels, this one has %d", topic, parts[1], k.levels, n)
	}
	t := Topic{Kind: k.kind, User: parts[n-1]}
	var err error
	switch t.Kind {
	case KindRoom:
		t.Room = parts[2]
		err = ValidateName("room", t.Room)
	case KindDM:
		t.Recipient = parts[2]
		err = ValidateName("user", t.Recipient)
	}
	if err == nil {
		err = ValidateName("user", t.User)
	}
	if err != nil {
		return Topic{}, fmt.Errorf("topic %q: %w", topic, err)
	}
	return t, nil
}

// maxTopicLevels is the most levels a chat topic has (chat/rooms/<room>/<user>).
const maxTopicLevels = 4

// splitLevels appends topic's first cap(into) levels and counts all, without allocating.
func splitLevels(topic string, into []string) ([]string, int) {
	n := strings.Count(topic, "/") + 1
	for len(into) < cap(into) {
		level, rest, found := strings.Cut(topic, "/")
		into = append(into, level)
		if !found {
			break
		}
		topic = rest
	}
	return into, n
}

// Conversation names a message's sequenced log: the room, or "@a,b" (the
// users in byte order) so both directions of a DM share one sequence.
func Conversation(t Topic) string {
	switch t.Kind {
	case KindRoom:
		return t.Room
	case KindDM:
		return DMConversation(t.Recipient, t.User)
	}
	return ""
}

// DMConversation is the conversation key of the direct messages between a and b.
func DMConversation(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "@" + a + "," + b
}

// ParseDMConversation returns a DM key's two users, or false for a room name.
func ParseDMConversation(key string) (a, b string, ok bool) {
	rest, ok := strings.CutPrefix(key, "@")
	if !ok {
		return "", "", false
	}
	return strings.Cut(rest, ",")
}
