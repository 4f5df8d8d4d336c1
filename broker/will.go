package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/wire"
)

// checkWill refuses a CONNECT whose Last Will the client could not publish
// itself. Mochi publishes a Will without the ACL check or any OnPublish
// hook, so it is checked here, once: it must be a topic the user may write
// (in open mode, any that fits the scheme), and never a chat message or
// catch-up request, which must pass through the room log as a publish.
func (h *authHook) checkWill(cl *mqtt.Client, pk packets.Packet) connectVerdict {
	if !pk.Connect.WillFlag {
		return connectAccepted
	}
	topic := pk.Connect.WillTopic
	user := string(pk.Connect.Username)
	reason := willProblem(topic)
	if reason == "" && !h.open && !h.allowed(user, topic, true) {
		reason = "the user may not publish on the Will's topic"
	}
	if reason == "" {
		return connectAccepted
	}
	h.deny(logrus.Fields{"client_id": clip(cl.ID), "user": clip(user), "remote": cl.Net.Remote, "topic": clip(topic)},
		logevent.WillRefused, reason)
	return connectNotAuthorized
}

// willProblem says why topic can never carry a Will, or returns "".
func willProblem(topic string) string {
	if problem := topicProblem(topic); problem != "" {
		return problem
	}
	t, err := wire.ParseTopic(topic)
	if err != nil {
		return "" // outside chat/: the ACL decides
	}
	switch t.Kind {
	case wire.KindRoom, wire.KindDM, wire.KindSync, wire.KindInbox:
		return "a Will cannot carry a " + t.Kind.String() + " message: chat messages pass through the room log as publishes"
	}
	return ""
}
