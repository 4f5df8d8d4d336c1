package session

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/chatnode/mqttconn"
	"github.com/distchat/distchat/chatnode/nodelog"
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
	s.link.attempting = n.Broker.String()
	s.mu.Unlock()
}

// connectedTo marks the connection up on the broker paho dialed last and
// returns that broker.
func (s *Session) connectedTo() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.link.current = s.link.attempting
	return s.link.current
}

// markLost marks connection gen (the s.link.connects it came up as) down, once,
// and returns the broker it was on and whether the node had reported it
// up (false when this call marked nothing). paho runs the connection-lost handler on
// a goroutine of its own, beside the reconnect, so it may come before or
// after onReconnecting, and even after the next connection is up:
// whichever of the two comes first for a connection marks it, and a call
// for a connection that is no longer the newest changes nothing (it would
// otherwise mark the new connection down, on the wrong broker).
func (s *Session) markLost(gen int) (broker string, wasUp bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.link.connects || gen == s.link.lostGen {
		return s.link.lost, false
	}
	s.link.lostGen = gen
	wasUp = s.link.connected
	s.link.connected = false
	if s.link.current != "" {
		s.link.lost = s.link.current
	}
	s.link.current = ""
	return s.link.lost, wasUp
}

// lastLost is the broker of the last connection marked lost.
func (s *Session) lastLost() string { return locked(s, func() string { return s.link.lost }) }

// generation is the number of the newest connection (s.link.connects).
func (s *Session) generation() int { return locked(s, func() int { return s.link.connects }) }

// reorderServers is called by onReconnecting with paho's own options,
// before each reconnect attempt (on paho's reconnect goroutine, which reads
// the list next), after the loss is marked: it puts the lost broker last.
func (s *Session) reorderServers(o *mqtt.ClientOptions) {
	if o == nil || len(s.link.servers) < 2 {
		return
	}
	o.Servers = failoverOrder(s.link.servers, s.lastLost())
}

// Broker is the URL of the broker the session is connected to, "" while it
// is not connected.
func (s *Session) Broker() string { return locked(s, func() string { return s.link.current }) }

// attemptedBroker is the broker paho dialed last.
func (s *Session) attemptedBroker() string {
	return locked(s, func() string { return s.link.attempting })
}

// A broker that is connected but acknowledges nothing (cut off from its
// cluster's majority, or its share of the replicated log stuck) would keep
// a node's publishes forever: an MQTT 3.1.1 client sends a publish again
// only on a new connection. With several brokers the node therefore leaves
// a broker on which a publish waits longer than cfg.StallFailover for its
// PUBACK: it closes the connection, paho reconnects to the next broker and
// sends the publishes still awaiting a PUBACK there.

// openConn is paho's connection opener (mqttconn.Open); it keeps the
// network connection so that leaveStalledBroker can end it.
func (s *Session) openConn(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	c, err := mqttconn.Open(uri, o)
	if err != nil {
		return nil, err
	}
	raw := c
	if w, ok := c.(*mqttconn.Conn); ok {
		raw = w.Conn
	}
	s.mu.Lock()
	s.link.conn = raw
	s.mu.Unlock()
	return c, nil
}

// waitAck waits for a publish token, the ack timeout or the session's end,
// leaving a broker that stalls the publish for cfg.StallFailover on the way
// when there is another (connects is the connection count when the
// publish went out).
func (s *Session) waitAck(tok mqtt.Token, timeout *time.Timer, connects int) error {
	var stall <-chan time.Time
	if len(s.link.servers) > 1 {
		t := time.NewTimer(s.cfg.StallFailover)
		defer t.Stop()
		stall = t.C
	}
	for {
		select {
		case <-tok.Done():
			return tok.Error()
		case <-timeout.C:
			return fmt.Errorf("no PUBACK within %s (the client still holds it and resends after a reconnect)", AckTimeout)
		case <-s.closing:
			return errClosedUnacked
		case <-stall:
			s.leaveStalledBroker(connects)
			stall = nil
		}
	}
}

// leaveStalledBroker ends the connection the publish went out on, if it is
// still the current one; paho then fails over as on any loss.
func (s *Session) leaveStalledBroker(connects int) {
	s.mu.Lock()
	c := s.link.conn
	broker := s.link.current
	if s.link.connects != connects || !s.link.connected || c == nil {
		s.mu.Unlock()
		return // that connection is gone already
	}
	s.link.conn = nil
	s.mu.Unlock()
	s.entry(nodelog.EventReconnecting).WithField(nodelog.FieldBroker, broker).
		WithField(nodelog.FieldError, fmt.Sprintf("no PUBACK within %s", s.cfg.StallFailover)).
		Warn("the broker acknowledges nothing; moving to the next")
	// A read deadline in the past fails paho's reader with a timeout, which
	// paho takes for a lost connection. (Closing the connection would not
	// do: paho ignores "use of closed network connection", taking it for
	// its own Disconnect.)
	if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
		s.entry(nodelog.EventReconnecting).WithField(nodelog.FieldError, err.Error()).Warn("end the stalled connection")
	}
}
