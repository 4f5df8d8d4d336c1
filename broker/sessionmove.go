package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/cluster"
	"github.com/distchat/distchat/broker/logevent"
)

// sessionMoveHook announces every session established here, so the broker
// the client left drops the old one (cluster.SessionMoves).
type sessionMoveHook struct {
	mqtt.HookBase
	moves *cluster.SessionMoves
}

func (h *sessionMoveHook) ID() string { return "distchat-session-moves" }

func (h *sessionMoveHook) Provides(b byte) bool { return b == mqtt.OnSessionEstablished }

// OnSessionEstablished announces cl's session.
func (h *sessionMoveHook) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if !cl.Net.Inline {
		h.moves.Announce(cl.ID)
	}
}

// followSessionMoves drops the offline session of a client that
// established one on another broker, and announces this broker's.
func (s *Server) followSessionMoves(node *cluster.Node) error {
	moves, err := node.FollowSessionMoves(s.dropMovedSession)
	if err != nil {
		return err
	}
	s.sessionMoves = moves
	return s.mochi.AddHook(&sessionMoveHook{moves: moves}, nil)
}

// dropMovedSession forgets clientID's offline session here: its client is
// on another broker now. A client connected here is left alone.
func (s *Server) dropMovedSession(clientID string) {
	cl, ok := s.mochi.Clients.Get(clientID)
	if !ok || !cl.Closed() {
		return
	}
	s.mochi.UnsubscribeClient(cl)
	cl.ClearInflights()
	s.mochi.Clients.Delete(clientID)
	s.log.WithFields(logrus.Fields{"event": logevent.SessionMoved, "client_id": clip(clientID)}).Info("session dropped: its client established one on another broker")
}
