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

// failoverOrder returns servers in the order to try after losing lost: the
// brokers after it, wrapping around, then lost itself; an unknown or empty
// lost keeps the configured order. paho dials its list in order on every
// reconnect, so the lost broker (perhaps a host that is gone, costing a
// whole connect timeout) is tried last and the move to a live broker costs
// one handshake. The room log, replicated, covers what the node missed;
// paho resends the unacknowledged publishes and the cluster stores each
// message id once.
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

// connectedTo marks the connection up on the broker paho dialed last and
// returns that broker.
func (s *Session) connectedTo() string {
	return locked(s, func() string { s.link.current = s.link.attempting; return s.link.current })
}

// markLost marks connection gen (the s.link.connects it came up as) down,
// once, if paho's connection is closed (closed), and returns the broker
// last lost and whether the node had reported gen up (the pipeline then
// goes offline). paho runs the connection-lost handler beside the
// reconnect, so it may come before or after onReconnecting, even after the
// next connection is up: the first of the two marks the connection, and a
// call for an older one changes nothing (it would mark the new one down).
func (s *Session) markLost(gen int, closed bool) (broker string, wasUp bool) {
	s.mu.Lock()
	if closed && gen == s.link.connects && gen != s.link.lostGen {
		s.link.lostGen = gen
		wasUp = s.link.connected
		s.link.connected = false
		if s.link.current != "" {
			s.link.lost = s.link.current
		}
		s.link.current = ""
	}
	broker = s.link.lost
	s.mu.Unlock()
	if wasUp {
		s.p.do(s.p.onDisconnected)
	}
	return broker, wasUp
}

// generation is the number of the newest connection (s.link.connects).
func (s *Session) generation() int { return locked(s, func() int { return s.link.connects }) }

// openConn is paho's connection opener (mqttconn.Open); it keeps the
// network connection so that leaveStalledBroker can end it. An MQTT 3.1.1
// client resends a publish only on a new connection, so a broker that
// acknowledges nothing (cut off from its cluster's majority) would keep it
// forever: with several brokers the node leaves one on which a publish
// waits longer than cfg.StallFailover for its PUBACK.
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
// leaving a broker that stalls the publish for cfg.StallFailover when there
// is another (connects is the connection count at the publish).
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
	// A past read deadline fails paho's reader as a lost connection would;
	// closing it would not: paho takes that for its own Disconnect.
	if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
		s.entry(nodelog.EventReconnecting).WithField(nodelog.FieldError, err.Error()).Warn("end the stalled connection")
	}
}
