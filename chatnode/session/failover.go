package session

import (
	"net/url"
	"slices"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Failover between the brokers of a cluster. paho dials the brokers of its
// list in order on every (re)connect and stays on the first that accepts.
// Left alone it would try the lost broker first again after a loss: when
// that broker's host is gone rather than refusing, the attempt waits the
// whole connect timeout before paho moves on. So before each reconnect the
// session reorders the list to start after the broker it lost and try that
// one last; the move to a live broker then costs one connection handshake.
// What the node missed meanwhile comes from the replicated room log, as
// after any reconnect (pipeline.onConnected); paho resends the publishes
// still awaiting PUBACK to the new broker, and the cluster stores each
// message id once.

// brokerState is where the session is connected; Session.mu guards it.
type brokerState struct {
	// servers is the configured broker list, parsed, in configured order.
	servers []*url.URL
	// attempting is the broker paho dials now (its last
	// ConnectionNotificationBroker); current the one the connection is up
	// on ("" while disconnected); lost the one of the last lost connection.
	attempting, current, lost string
}

// failoverOrder returns servers in the order to try after losing lost: the
// brokers after it in the configured order, wrapping around, then lost
// itself. An unknown or empty lost keeps the configured order.
func failoverOrder(servers []*url.URL, lost string) []*url.URL {
	i := slices.IndexFunc(servers, func(u *url.URL) bool { return u.String() == lost })
	if i < 0 {
		return slices.Clone(servers)
	}
	return append(slices.Clone(servers[i+1:]), servers[:i+1]...)
}

// parseServers parses the configured broker URLs as paho's AddBroker does.
func parseServers(brokers []string) []*url.URL {
	out := make([]*url.URL, 0, len(brokers))
	for _, b := range brokers {
		if u, err := url.Parse(b); err == nil { // config.Brokers.Validate refused the others
			out = append(out, u)
		}
	}
	return out
}

// onBrokerAttempt records which broker paho dials (a
// ConnectionNotificationBroker, on paho's connect goroutine).
func (s *Session) onBrokerAttempt(n mqtt.ConnectionNotificationBroker) {
	s.mu.Lock()
	s.brokers.attempting = n.Broker.String()
	s.mu.Unlock()
}

// connectedTo marks the connection up on the broker paho dialed last and
// returns that broker.
func (s *Session) connectedTo() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.brokers.current = s.brokers.attempting
	return s.brokers.current
}

// lostBroker marks the connection down and returns the broker it was on.
// paho runs the connection-lost handler on a goroutine of its own, beside
// the reconnect, so whichever of onConnectionLost and onReconnecting comes
// first marks it.
func (s *Session) lostBroker() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.brokers.current != "" {
		s.brokers.lost = s.brokers.current
	}
	s.brokers.current = ""
	return s.brokers.lost
}

// reorderServers is called by onReconnecting with paho's own options,
// before each reconnect attempt (on paho's reconnect goroutine, which reads
// the list next): it puts the lost broker last.
func (s *Session) reorderServers(o *mqtt.ClientOptions) {
	if o == nil || len(s.brokers.servers) < 2 {
		return
	}
	o.Servers = failoverOrder(s.brokers.servers, s.lostBroker())
}

// Broker is the URL of the broker the session is connected to, "" while it
// is not connected.
func (s *Session) Broker() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.brokers.current
}

// attemptedBroker is the broker paho dialed last.
func (s *Session) attemptedBroker() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.brokers.attempting
}
