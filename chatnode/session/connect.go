package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/mqttconn"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// link is the session's connection job: whether it is up, on which broker,
// and why it failed. Session.mu guards the fields from connected on, except
// servers, which clientOptions sets once.
type link struct {
	// firstUp is closed once the first connection is up and subscribed: a
	// clean session publishes nothing before (see Send).
	firstUp     chan struct{}
	firstUpOnce sync.Once
	refused     chan struct{} // closed when the broker refused the node
	connectTok  mqtt.Token    // the first Connect's: done once paho connected or gave up
	connected   bool
	connects    int
	lostGen     int // the newest connection whose loss is marked (markLost)
	// servers is the broker list in configured order; attempting is the
	// broker paho dials now, current the one the connection is up on (""
	// while down), lost the one of the last lost connection.
	servers                   []*url.URL
	attempting, current, lost string
	conn                      net.Conn // the one paho uses now; nil once leaveStalledBroker ended it
	// refusedErr, lastConnErr and toldUnreachable record the connection
	// failures (connerr.go).
	refusedErr      *RefusedError
	lastConnErr     error
	toldUnreachable bool
}

// clientOptions are the paho settings of docs/mochi-and-paho.md: each
// default they change loses messages or stalls the connection.
func (s *Session) clientOptions() *mqtt.ClientOptions {
	o := mqtt.NewClientOptions()
	for _, b := range s.cfg.Broker {
		o.AddBroker(b) // tried in order; onReconnecting puts a lost one last
	}
	o.SetClientID(s.clientID).
		SetUsername(s.me).
		SetCleanSession(s.clean).                            // persistent (queued while away) unless the id is for this run only
		SetAutoReconnect(true).                              // and QoS 1 publishes stored while disconnected
		SetConnectRetry(true).                               // with a clean session paho wipes what was published before the first connect: Send waits for it
		SetConnectRetryInterval(time.Second).                // default 30 s
		SetMaxReconnectInterval(s.cfg.MaxReconnectInterval). // default 10 min
		SetConnectTimeout(s.cfg.ConnectTimeout).
		SetKeepAlive(s.cfg.KeepAlive).
		SetProtocolVersion(4).
		SetOrderMatters(false).     // handlers run concurrently; order comes from seq / room_seq
		SetStore(newResumeStore()). // paho's memory store keeping a PUBLISH apart from the one on the wire
		SetResumeSubs(false).       // we resubscribe in OnConnect ourselves
		SetDefaultPublishHandler(s.handle).
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(s.onConnectionLost).
		SetReconnectingHandler(s.onReconnecting).
		SetConnectionNotificationHandler(s.onConnectNotification). // refusals stop the retries (connerr.go)
		SetCustomOpenConnectionFn(s.openConn)                      // buffered reads, coalesced writes: fewer system calls
	s.link.servers = o.Servers // as paho parsed them, in configured order
	if pw := s.cfg.Password; pw != "" {
		o.SetPassword(pw)
	}
	if will, err := s.presencePayload(wire.Offline, nil); err == nil {
		o.SetBinaryWill(wire.PresenceTopic(s.me), will, 1, true)
	}
	return o
}

// Start connects in the background (with retry) and starts the pipeline; it
// does not wait for the connection (see WaitConnected).
func (s *Session) Start(ctx context.Context) {
	go s.p.run()
	tok := s.client.Connect()
	s.link.connectTok = tok
	s.onFailure(tok, ctx.Done(), func(err error) {
		if !errors.Is(s.Err(), ErrRefused) { // a refusal is logged as such
			s.entry(nodelog.EventConnectionLost).WithError(err).Warn("connect failed")
		}
	})
}

// onFailure calls f, on its own goroutine, with tok's error if tok fails
// before stop or the session's end.
func (s *Session) onFailure(tok mqtt.Token, stop <-chan struct{}, f func(error)) {
	go func() {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				f(err)
			}
		case <-s.closing:
		case <-stop:
		}
	}()
}

// WaitConnected waits until the first connection is up and subscribed. It
// returns the *RefusedError at once when the broker refuses the node, and
// with ctx's end the last attempt's *UnreachableError, if any.
func (s *Session) WaitConnected(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.Connected() {
			return nil
		}
		select {
		case <-ctx.Done():
			if err := s.Err(); err != nil {
				return fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			return fmt.Errorf("connect to %s: %w", s.cfg.Broker, ctx.Err())
		case <-s.link.refused:
			return s.Err()
		case <-t.C:
		}
	}
}

// Connected reports whether the session is connected and subscribed.
func (s *Session) Connected() bool { return locked(s, func() bool { return s.link.connected }) }

func (s *Session) onConnect(c mqtt.Client) {
	s.mu.Lock()
	s.link.connects++
	n := s.link.connects
	rooms := slices.Clone(s.rooms)
	s.mu.Unlock()
	ev := nodelog.EventConnected
	if n > 1 {
		ev = nodelog.EventReconnected
	}
	broker := s.connectedTo()
	s.entry(ev).WithField(nodelog.FieldBroker, broker).WithField(nodelog.FieldClientID, s.clientID).Info(ev)
	filters := map[string]byte{wire.DMFilter(s.me): 1, wire.PresenceFilter: 1, wire.InboxTopic(s.me): 1}
	for _, r := range rooms {
		filters[wire.RoomFilter(r)] = 1
	}
	// Without its subscriptions the session would silently miss messages,
	// so it is not connected until they are in place (paho never
	// reconnects after a Disconnect, so that is no way out).
	for attempt := 1; ; attempt++ {
		err := s.subscribe(filters)
		if err == nil {
			break
		}
		s.entry(nodelog.EventSubscribeFailed).WithError(err).WithField("attempt", attempt).
			Warn("subscribe after connect failed; asking again")
		select {
		case <-s.closing:
			return
		case <-time.After(min(time.Duration(attempt-1)*time.Second, s.cfg.MaxReconnectInterval)):
		}
		if !c.IsConnectionOpen() {
			return // the next OnConnect subscribes
		}
	}
	s.logSubscribed("", s.me)
	for _, r := range rooms {
		s.logSubscribed(r, "")
	}
	// From here on what is published is kept: the pipeline's requests too.
	s.link.firstUpOnce.Do(func() { close(s.link.firstUp) })
	s.publishPresence(wire.Online)
	s.p.do(func() { s.p.onConnected() })
	// Reported before flagged, so whoever waits for it sees the report first.
	s.onEvent(Status{Connected: true, Broker: broker})
	s.mu.Lock()
	s.link.connected = s.link.lostGen != n // lost while subscribing: the next connection reports
	s.mu.Unlock()
}

// subscribe subscribes to filters, waiting a bounded time and checking every
// return code (0x80 is a refusal, e.g. by the broker's ACL).
func (s *Session) subscribe(filters map[string]byte) error {
	tok := s.client.SubscribeMultiple(filters, nil)
	if err := s.waitToken(tok, "SUBACK"); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if st, ok := tok.(*mqtt.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code >= 0x80 {
				return fmt.Errorf("subscribe %s: refused by the broker (code %#x)", f, code)
			}
		}
	}
	return nil
}

// waitToken waits a bounded time for tok's ack (a SUBACK or an UNSUBACK).
func (s *Session) waitToken(tok mqtt.Token, ack string) error {
	if !tok.WaitTimeout(s.cfg.ConnectTimeout) {
		return fmt.Errorf("no %s within %s", ack, s.cfg.ConnectTimeout)
	}
	return tok.Error()
}

func (s *Session) onConnectionLost(c mqtt.Client, err error) {
	gen := s.generation() // before asking paho: a newer connection may come up meanwhile
	broker, wasUp := s.markLost(gen, !c.IsConnectionOpen())
	s.entry(nodelog.EventConnectionLost).WithField(nodelog.FieldBroker, broker).WithError(err).Warn("connection lost")
	if wasUp {
		s.onEvent(Status{Err: err, Broker: broker})
	}
}

// onReconnecting runs before every reconnect attempt, with paho's own
// options: it marks the lost connection down, if onConnectionLost has not
// yet, and orders the brokers for failover.
func (s *Session) onReconnecting(_ mqtt.Client, o *mqtt.ClientOptions) {
	broker, wasUp := s.markLost(s.generation(), true)
	if o != nil && len(s.link.servers) > 1 {
		o.Servers = failoverOrder(s.link.servers, broker) // paho reads it next
	}
	if wasUp {
		s.onEvent(Status{Err: errConnectionLost, Broker: broker})
	}
	s.entry(nodelog.EventReconnecting).Info("reconnecting")
	s.onEvent(Status{Reconnecting: true})
}

// errConnectionLost is the loss reported when the reconnect notices it first.
var errConnectionLost = errors.New("connection to the broker lost")

// handle is paho's publish handler: it queues a stamped copy for the
// pipeline and returns at once, since paho PUBACKs after it returns.
func (s *Session) handle(_ mqtt.Client, m mqtt.Message) {
	s.p.in.push(inbound{recvNS: time.Now().UnixNano(), topic: m.Topic(), payload: slices.Clone(m.Payload()), retained: m.Retained()})
}

// publishSync publishes a sync request without waiting. A clean session
// sends none before its first connection: paho would wipe it.
func (s *Session) publishSync(payload []byte) {
	select {
	case <-s.link.firstUp:
	default:
		if s.clean {
			return
		}
	}
	s.onFailure(s.client.Publish(wire.SyncTopic(s.me), 1, false, payload), nil, func(err error) {
		s.entry(nodelog.EventSync).WithError(err).Warn("sync request not sent")
	})
}

// resumeStore is paho's ordered memory store holding a PUBLISH as a private
// copy and handing out copies. paho encodes a PUBLISH through the packet it
// stored, and a resume marks stored packets Dup while the lost connection's
// writer may still encode them: one shared packet is a data race. With
// copies the stored packet is written once, by Put; payloads are shared.
type resumeStore struct{ *mqtt.OrderedMemoryStore }

func newResumeStore() resumeStore { return resumeStore{mqtt.NewOrderedMemoryStore()} }

// Put stores m under key, a PUBLISH as a copy.
func (s resumeStore) Put(key string, m packets.ControlPacket) {
	s.OrderedMemoryStore.Put(key, copyPublish(m))
}

// Get returns the packet stored under key, a PUBLISH as a copy.
func (s resumeStore) Get(key string) packets.ControlPacket {
	return copyPublish(s.OrderedMemoryStore.Get(key))
}

// copyPublish returns a copy of a PUBLISH, and any other packet as it is.
func copyPublish(m packets.ControlPacket) packets.ControlPacket {
	if p, ok := m.(*packets.PublishPacket); ok {
		cp := *p
		return &cp
	}
	return m
}

// failoverOrder returns servers in the order to try after losing lost: the
// brokers after it, wrapping around, then lost itself (an unknown lost keeps
// the configured order). paho dials its list in order, so a lost broker,
// perhaps a host that is gone and costs a whole connect timeout, comes last.
func failoverOrder(servers []*url.URL, lost string) []*url.URL {
	i := slices.IndexFunc(servers, func(u *url.URL) bool { return u.String() == lost })
	if i < 0 {
		return slices.Clone(servers)
	}
	return append(slices.Clone(servers[i+1:]), servers[:i+1]...)
}

// connectedTo marks the connection up on the broker paho dialed last.
func (s *Session) connectedTo() string {
	return locked(s, func() string { s.link.current = s.link.attempting; return s.link.current })
}

// markLost marks connection gen (the s.link.connects it came up as) down
// once, if paho's connection is closed, and returns the broker last lost and
// whether gen was reported up. paho runs the connection-lost handler beside
// the reconnect, even after the next connection is up: the first of the two
// marks it, and a call for an older connection changes nothing.
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
// network connection for leaveStalledBroker: an MQTT 3.1.1 client resends a
// publish only on a new connection, so a broker that acknowledges nothing
// (cut off from its cluster's majority) would keep it forever.
func (s *Session) openConn(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	c, err := mqttconn.Open(uri, o)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.link.conn = c.(*mqttconn.Conn).Conn // Open's connections are *mqttconn.Conn
	s.mu.Unlock()
	return c, nil
}

// waitAck waits for a publish token, the ack timeout or the session's end,
// leaving a broker that stalls the publish for cfg.StallFailover if it can.
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
