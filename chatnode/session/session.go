// Package session is the chat node's MQTT layer: one paho client configured
// so that it does not lose messages (docs/mochi-and-paho.md), a bounded window of
// QoS 1 publishes, presence with a Last Will, and a single pipeline goroutine
// that turns at-least-once deliveries into an effectively-once, ordered stream
// (dedup by message id and room sequence, per-sender gap detection, room-order
// hold-back and catch-up from the broker's room log).
//
// The interactive UI and the load generator both sit on top of it, so both
// exercise exactly the same delivery path.
package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/chatnode/wire"
	"github.com/distchat/distchat/config"
)

// AckTimeout is how long a publish may wait for its PUBACK before the node
// reports it as failed and frees its window slot. paho keeps the message and
// still sends it after a reconnect; the report says so.
var AckTimeout = 5 * time.Minute

// Event is something the session reports to its user: a Message, Status,
// PresenceChange or Info.
type Event interface{ isEvent() }

// Message is a chat message ready to show, in display order.
type Message struct {
	Env wire.Envelope
	// Conv is the room name or the DM conversation key.
	Conv string
	// Private is true for direct messages.
	Private bool
	// Via is wire.ViaLive, wire.ViaSync or wire.ViaHistory.
	Via    string
	RecvNS int64
	Bytes  int
}

// Status reports a change of the connection.
type Status struct {
	Connected    bool
	Reconnecting bool
	Err          error
	// Broker is the broker connected to (Connected) or lost (Err set).
	Broker string
}

// PresenceChange reports another user's presence as it changed. Retained is
// true for the state the broker hands out on subscribe (not news).
type PresenceChange struct {
	Presence     wire.Presence
	Joined, Left []string
	Retained     bool
}

// Info is a one-line notice for the user (no room log, sent after reconnect…).
type Info struct{ Text string }

func (Message) isEvent()        {}
func (Status) isEvent()         {}
func (PresenceChange) isEvent() {}
func (Info) isEvent()           {}

// Options are the session's hooks.
type Options struct {
	// OnEvent receives every event, from one goroutine at a time for
	// messages and presence. It must not block for long.
	OnEvent func(Event)
	// Boot overrides the boot id (process start, Unix ns); 0 uses time.Now.
	Boot int64
}

// Session is one chat node's connection and delivery pipeline.
type Session struct {
	cfg config.Node
	me  string // the MQTT username: the sender level of every topic
	// clientID is this device's MQTT client id (see resolveClientID);
	// clean is true when it is made up for this run only, and the session
	// is then a clean one.
	clientID string
	device   string
	clean    bool
	// firstUp is closed when the first connection is up and subscribed:
	// a clean session publishes nothing before (see Send).
	firstUp     chan struct{}
	firstUpOnce sync.Once
	// presenceMu orders presence publishes against quitting: once leaving
	// is set (the node says offline), no device-level "online" follows.
	presenceMu  sync.Mutex
	leaving     bool        // guarded by presenceMu
	reasserting atomic.Bool // an "online again" publish is under way
	// release gives the state dir's lock back (after the last save).
	release func() error
	log     *logrus.Entry
	onEvent func(Event)
	client  mqtt.Client
	boot    int64
	ids     atomic.Uint64
	window  chan struct{}
	sendMu  sync.Mutex // keeps seq order == publish order
	closing chan struct{}
	// closeOnce makes Close safe to call again (it reports the first
	// answer): its window drain must run once.
	closeOnce sync.Once
	unacked   int

	mu        sync.Mutex
	rooms     []string
	subLogged map[string]bool
	convSeq   map[string]uint64
	connected bool
	connects  int
	// brokers is the broker the connection is on (failover.go).
	brokers  brokerState
	presence map[string]wire.Presence
	// echoes are closed when the node receives its own room message back:
	// the proof that the broker stored it when the connection broke while it
	// was in flight (paho's token then completes on the resend, or fails on
	// the write, never on the PUBACK).
	echoes map[string]chan struct{}
	// Connection failures (connerr.go): the broker's refusal, the last
	// failed attempt and whether its failing was reported.
	refusedErr      *RefusedError
	lastConnErr     error
	toldUnreachable bool
	// refused is closed when the broker refused the connection.
	refused chan struct{}
	// connectTok is the first Connect's token (set by Start): done when
	// paho's connect loop has ended, connected or given up.
	connectTok mqtt.Token

	p *pipeline
}

// New builds a session from a validated configuration. It does not connect.
func New(cfg config.Node, log *logrus.Entry, opts Options) (*Session, error) {
	release, err := lockState(cfg.StateDir, cfg.User)
	if err != nil {
		return nil, err
	}
	state, err := loadDeviceState(cfg.StateDir, cfg.User)
	if err != nil {
		return nil, errors.Join(err, release())
	}
	clientID, clean, err := resolveClientID(cfg, state.Device)
	if err != nil {
		return nil, errors.Join(err, release())
	}
	s := &Session{
		cfg:       cfg,
		me:        cfg.User,
		clientID:  clientID,
		device:    state.Device,
		clean:     clean,
		release:   release,
		firstUp:   make(chan struct{}),
		log:       log,
		onEvent:   opts.OnEvent,
		boot:      opts.Boot,
		window:    make(chan struct{}, cfg.Window),
		closing:   make(chan struct{}),
		subLogged: map[string]bool{},
		convSeq:   map[string]uint64{},
		presence:  map[string]wire.Presence{},
		echoes:    map[string]chan struct{}{},
		refused:   make(chan struct{}),
	}
	if s.onEvent == nil {
		s.onEvent = func(Event) {}
	}
	if s.boot == 0 {
		s.boot = time.Now().UnixNano()
	}
	for _, r := range cfg.Rooms {
		if !slices.Contains(s.rooms, r) {
			s.rooms = append(s.rooms, r)
		}
	}
	s.brokers.servers = parseServers(cfg.Broker)
	s.p = newPipeline(s, state.Convs)
	s.client = mqtt.NewClient(s.clientOptions())
	return s, nil
}

// resolveClientID picks the MQTT client id of this device: -client-id when
// given, else "<user>-<device>" with the device id kept in the state dir, so
// that each device of a user has its own persistent session and two devices
// online together never take the id from each other. The broker reserves a
// client id naming a user ("u", "u-…", "…-u") for that user, and the device
// id has no '-', so the id names the user and no one else. A node without a
// state dir has no lasting identity: it gets "<user>-<random>" for this run
// and a clean session (clean true), because a persistent session under an id
// never used again would stay on the broker collecting messages until it
// expires. Catch-up from the room log covers what a clean session does not
// keep while the node is away.
func resolveClientID(cfg config.Node, device string) (id string, clean bool, err error) {
	switch {
	case cfg.ClientID != "":
		return cfg.ClientID, false, nil
	case device != "":
		return cfg.User + "-" + device, false, nil
	}
	run, err := newDeviceID()
	if err != nil {
		return "", false, err
	}
	return cfg.User + "-" + run, true, nil
}

// clientOptions are the paho settings from docs/mochi-and-paho.md, each one there
// because its default loses messages or stalls the connection.
func (s *Session) clientOptions() *mqtt.ClientOptions {
	o := mqtt.NewClientOptions()
	for _, b := range s.cfg.Broker {
		o.AddBroker(b) // tried in order; onReconnecting puts a lost one last (failover.go)
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
		SetOrderMatters(false). // handlers run concurrently; order comes from seq / room_seq
		SetStore(mqtt.NewOrderedMemoryStore()).
		SetResumeSubs(false). // we resubscribe in OnConnect ourselves
		SetDefaultPublishHandler(s.handle).
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(s.onConnectionLost).
		SetReconnectingHandler(s.onReconnecting).
		SetConnectionNotificationHandler(s.onConnectNotification). // refusals stop the retries (connerr.go)
		SetCustomOpenConnectionFn(s.openConn)                      // buffered reads, coalesced writes: fewer system calls
	if pw := s.cfg.Password; pw != "" {
		o.SetPassword(pw)
	}
	will, err := s.presencePayload(wire.Offline, nil)
	if err == nil {
		o.SetBinaryWill(wire.PresenceTopic(s.me), will, 1, true)
	}
	return o
}

// Boot is this run's boot id.
func (s *Session) Boot() int64 { return s.boot }

// User is the identity the session sends as.
func (s *Session) User() string { return s.me }

// ClientID is this device's MQTT client id.
func (s *Session) ClientID() string { return s.clientID }

// Start connects in the background (with retry) and starts the pipeline; it
// does not wait for the connection (see WaitConnected).
func (s *Session) Start(ctx context.Context) {
	go s.p.run()
	tok := s.client.Connect()
	s.connectTok = tok
	go func() {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil && !errors.Is(s.Err(), ErrRefused) { // a refusal is logged as such
				s.log.WithField(wire.FieldEvent, wire.EventConnectionLost).WithField(wire.FieldError, err.Error()).Warn("connect failed")
			}
		case <-s.closing:
		case <-ctx.Done():
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
		case <-s.refused:
			return s.Err()
		case <-t.C:
		}
	}
}

// Connected reports whether the session is connected and subscribed.
func (s *Session) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Rooms is the rooms joined, in join order.
func (s *Session) Rooms() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.rooms)
}

// Who lists the users whose retained presence says they are online in room
// (any room when room is ""), sorted.
func (s *Session) Who(room string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for u, p := range s.presence {
		if p.Status == wire.Online && (room == "" || slices.Contains(p.Rooms, room)) {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

// PresenceOf returns the last presence seen for user.
func (s *Session) PresenceOf(user string) (wire.Presence, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.presence[user]
	return p, ok
}

func (s *Session) entry(event string) *logrus.Entry {
	return s.log.WithField(wire.FieldEvent, event)
}

func (s *Session) onConnect(c mqtt.Client) {
	s.mu.Lock()
	s.connects++
	n := s.connects
	rooms := slices.Clone(s.rooms)
	s.mu.Unlock()
	ev := wire.EventConnected
	if n > 1 {
		ev = wire.EventReconnected
	}
	broker := s.connectedTo()
	s.entry(ev).WithField(wire.FieldBroker, broker).WithField(wire.FieldClientID, s.clientID).Info(ev)
	filters := map[string]byte{
		wire.DMFilter(s.me):   1,
		wire.PresenceFilter:   1,
		wire.InboxTopic(s.me): 1,
	}
	for _, r := range rooms {
		filters[wire.RoomFilter(r)] = 1
	}
	// A session without its subscriptions would silently miss messages, so
	// it is not reported connected until they are in place. (Disconnecting
	// to start over is no way out: paho never reconnects after Disconnect.)
	for attempt := 1; ; attempt++ {
		err := s.subscribe(filters)
		if err == nil {
			break
		}
		s.entry(wire.EventSubscribeFailed).WithField(wire.FieldError, err.Error()).WithField("attempt", attempt).
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
	// Up and subscribed: from here on what is published is kept (before
	// the pipeline asks the room log, so its requests go out now).
	s.firstUpOnce.Do(func() { close(s.firstUp) })
	s.publishPresence(wire.Online)
	s.p.do(func() { s.p.onConnected() })
	// Report before flagging connected, so whoever waits for the connection
	// sees the report first.
	s.onEvent(Status{Connected: true, Broker: broker})
	s.mu.Lock()
	s.connected = true
	s.mu.Unlock()
}

// subscribe subscribes to filters, waiting a bounded time and checking every
// return code (0x80 is a refusal, e.g. by the broker's ACL).
func (s *Session) subscribe(filters map[string]byte) error {
	tok := s.client.SubscribeMultiple(filters, nil)
	if !tok.WaitTimeout(s.cfg.ConnectTimeout) {
		return fmt.Errorf("subscribe: no SUBACK within %s", s.cfg.ConnectTimeout)
	}
	if err := tok.Error(); err != nil {
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

// logSubscribed logs the start of a membership once; resubscriptions after a
// reconnect continue the same membership.
func (s *Session) logSubscribed(room, to string) {
	key := room
	if to != "" {
		key = "@" + to
	}
	s.mu.Lock()
	first := !s.subLogged[key]
	s.subLogged[key] = true
	s.mu.Unlock()
	if !first {
		return
	}
	e := s.entry(wire.EventSubscribed)
	if room != "" {
		e = e.WithField(wire.FieldRoom, room)
	} else {
		e = e.WithField(wire.FieldTo, to)
	}
	e.Info("subscribed")
}

func (s *Session) onConnectionLost(_ mqtt.Client, err error) {
	s.mu.Lock()
	s.connected = false
	s.mu.Unlock()
	broker := s.lostBroker()
	s.p.do(s.p.onDisconnected)
	s.entry(wire.EventConnectionLost).WithField(wire.FieldBroker, broker).WithField(wire.FieldError, err.Error()).Warn("connection lost")
	s.onEvent(Status{Err: err, Broker: broker})
}

// onReconnecting runs before every reconnect attempt, on paho's reconnect
// goroutine, with paho's own options: it orders the brokers for failover.
func (s *Session) onReconnecting(_ mqtt.Client, o *mqtt.ClientOptions) {
	s.reorderServers(o)
	s.entry(wire.EventReconnecting).Info("reconnecting")
	s.onEvent(Status{Reconnecting: true})
}

// handle is paho's publish handler. It stamps the receive time first, copies
// what it needs into the pipeline's queue and returns at once: paho PUBACKs
// after it returns, and it must never block the client.
func (s *Session) handle(_ mqtt.Client, m mqtt.Message) {
	recv := time.Now().UnixNano()
	s.p.in.push(inbound{topic: m.Topic(), payload: slices.Clone(m.Payload()), retained: m.Retained(), recvNS: recv})
}

func (s *Session) presencePayload(status string, rooms []string) ([]byte, error) {
	p := wire.Presence{V: wire.Version, User: s.me, Status: status, Rooms: rooms, AtNS: time.Now().UnixNano(), Device: s.clientID}
	return jsonMarshal(p)
}

// publishPresence publishes the retained presence and waits for its PUBACK
// a bounded time. Once the node has said offline it says online no more.
func (s *Session) publishPresence(status string) {
	var rooms []string
	if status == wire.Online {
		rooms = s.Rooms()
	}
	payload, err := s.presencePayload(status, rooms)
	if err != nil {
		s.entry(wire.EventPresence).WithField(wire.FieldError, err.Error()).Error("encode presence")
		return
	}
	// Publish only queues the packet (paho writes in queue order), so the
	// lock orders the two publishes without waiting on the network.
	s.presenceMu.Lock()
	if status == wire.Online && s.leaving {
		s.presenceMu.Unlock()
		return
	}
	s.leaving = status == wire.Offline
	tok := s.client.Publish(wire.PresenceTopic(s.me), 1, true, payload)
	s.presenceMu.Unlock()
	e := s.entry(wire.EventPresence).WithField(wire.FieldUser, s.me).WithField(wire.FieldStatus, status)
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			e.WithField(wire.FieldError, err.Error()).Warn("presence not published")
			return
		}
		e.Info("presence")
	case <-time.After(s.cfg.ConnectTimeout):
		e.WithField(wire.FieldError, "no PUBACK within "+s.cfg.ConnectTimeout.String()).Warn("presence not acknowledged")
	}
}

// onlineAgain says online again after another device of this user (or its
// Will) said the user is offline while this device is still connected: on
// a broker that keeps presence per user this does not happen, on any other
// (Mosquitto) the last device to speak wins, so the user shows online again
// after a moment. It runs on its own goroutine (it waits for the PUBACK).
func (s *Session) onlineAgain() {
	if !s.Connected() || !s.reasserting.CompareAndSwap(false, true) {
		return // a reconnect says online anyway
	}
	defer s.reasserting.Store(false)
	s.entry(wire.EventPresence).WithField(wire.FieldUser, s.me).Info("another device said offline; saying online again")
	s.publishPresence(wire.Online)
}

// ErrNotMember is returned when sending to or leaving a room not joined.
var ErrNotMember = errors.New("not a member of that room")

// Join subscribes to room, announces it in presence and asks the room log
// for its recent history (cfg.History messages).
func (s *Session) Join(room string) error {
	if err := wire.ValidateName("room", room); err != nil {
		return err
	}
	s.mu.Lock()
	if slices.Contains(s.rooms, room) {
		s.mu.Unlock()
		return nil
	}
	s.rooms = append(s.rooms, room)
	connected := s.connected
	s.mu.Unlock()
	s.p.do(func() { s.p.join(room) })
	if !connected {
		return nil // OnConnect subscribes to every joined room
	}
	if err := s.subscribe(map[string]byte{wire.RoomFilter(room): 1}); err != nil {
		return fmt.Errorf("join %s: %w", room, err)
	}
	s.logSubscribed(room, "")
	s.publishPresence(wire.Online)
	s.p.do(func() { s.p.catchUp(room) })
	return nil
}

// Leave unsubscribes from room and forgets its position in the room log.
func (s *Session) Leave(room string) error {
	s.mu.Lock()
	i := slices.Index(s.rooms, room)
	if i < 0 {
		s.mu.Unlock()
		return fmt.Errorf("leave %s: %w", room, ErrNotMember)
	}
	s.rooms = slices.Delete(s.rooms, i, i+1)
	delete(s.subLogged, room)
	connected := s.connected
	s.mu.Unlock()
	s.p.do(func() { s.p.leave(room) })
	if connected {
		tok := s.client.Unsubscribe(wire.RoomFilter(room))
		if !tok.WaitTimeout(s.cfg.ConnectTimeout) {
			return fmt.Errorf("leave %s: no UNSUBACK within %s", room, s.cfg.ConnectTimeout)
		}
		if err := tok.Error(); err != nil {
			return fmt.Errorf("leave %s: %w", room, err)
		}
		s.publishPresence(wire.Online)
	}
	s.entry(wire.EventUnsubscribed).WithField(wire.FieldRoom, room).Info("unsubscribed")
	return nil
}

// History asks the room log for the last n messages of conv; they arrive as
// Messages with Via == wire.ViaHistory.
func (s *Session) History(conv string, n int) {
	s.p.do(func() { s.p.history(conv, n) })
}

// Outgoing is a message to send: to a Room or, with To set, a direct message.
type Outgoing struct {
	Room, To string
	Kind     string
	Body     string
	// Size pads the encoded envelope up to this many bytes (load messages).
	Size int
	// SentNS overrides the send time (the scheduled time in load runs).
	SentNS int64
}

// Sent tracks one published message. Done is closed when the broker
// acknowledged it (Err nil) or the send failed (Err set).
type Sent struct {
	ID    string
	Seq   uint64
	Bytes int
	// Queued is true when the node was disconnected at send time: the
	// message waits in the client and goes out after the reconnect.
	Queued bool
	Done   chan struct{}
	Err    error
}

// ErrTooLarge is returned for a message over the configured size limit.
var ErrTooLarge = errors.New("message too large")

// Send publishes one message at QoS 1. It blocks while the in-flight window
// is full (the broker's in-flight quota silently drops beyond it) and returns
// once the message is handed to the client; Sent.Done reports the PUBACK.
func (s *Session) Send(ctx context.Context, o Outgoing) (*Sent, error) {
	env := wire.Envelope{V: wire.Version, Kind: o.Kind, Room: o.Room, To: o.To, From: s.me, Boot: s.boot, SentNS: o.SentNS, Body: o.Body}
	var topic, conv string
	switch {
	case o.To != "":
		if err := wire.ValidateName("user", o.To); err != nil {
			return nil, err
		}
		env.Room = ""
		topic, conv = wire.DMTopic(o.To, s.me), "@"+o.To
	default:
		if err := wire.ValidateName("room", o.Room); err != nil {
			return nil, err
		}
		topic, conv = wire.RoomTopic(o.Room, s.me), o.Room
	}
	if s.clean {
		// paho wipes what a clean session published before its first
		// connection (ConnectRetry stores it, the CONNACK resets the
		// store): wait for that connection instead.
		select {
		case <-s.firstUp:
		case <-ctx.Done():
			return nil, fmt.Errorf("send: not connected yet: %w", ctx.Err())
		case <-s.refused:
			return nil, fmt.Errorf("send: %w", s.Err())
		case <-s.closing:
			return nil, errors.New("send: the session is closed")
		}
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	seq := s.convSeq[conv] + 1
	s.mu.Unlock()
	env.Seq = seq
	env.ID = s.me + "-" + strconv.FormatInt(s.boot, 36) + "-" + strconv.FormatUint(s.ids.Add(1), 36)
	if env.SentNS == 0 {
		env.SentNS = time.Now().UnixNano()
	}
	payload, err := env.Encode()
	if err != nil {
		return nil, err
	}
	if o.Size > len(payload)+len(`,"pad":""`) {
		env.Pad = strings.Repeat("x", o.Size-len(payload)-len(`,"pad":""`))
		if payload, err = env.Encode(); err != nil {
			return nil, err
		}
	}
	if len(payload) > s.cfg.MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes encoded, the limit is %d", ErrTooLarge, len(payload), s.cfg.MaxPayload)
	}
	select {
	case s.window <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("send: %w", ctx.Err())
	case <-s.closing:
		return nil, errors.New("send: the session is closed")
	}
	var echo chan struct{}
	s.mu.Lock()
	s.convSeq[conv] = seq
	queued := !s.connected
	connects := s.connects
	if o.To == "" {
		echo = make(chan struct{})
		s.echoes[env.ID] = echo
	}
	s.mu.Unlock()
	sent := &Sent{ID: env.ID, Seq: seq, Bytes: len(payload), Queued: queued, Done: make(chan struct{})}
	start := time.Now()
	tok := s.client.Publish(topic, 1, false, payload)
	go s.awaitAck(tok, sent, env, start, connects, echo)
	return sent, nil
}

// echoed reports that the node received its own message id back.
func (s *Session) echoed(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.echoes[id]; ok {
		close(ch)
		delete(s.echoes, id)
	}
}

// awaitAck waits (bounded) for a publish token, frees the window slot and
// logs the outcome. A token that completes after the connection broke says
// nothing about the PUBACK (it fails on the broken write although paho keeps
// the message and resends it, or completes on the resend), so then a room
// message counts as sent when its echo arrives; for a direct message, which
// has no echo, the log says it is in paho's hands (confirmed_by: resend).
func (s *Session) awaitAck(tok mqtt.Token, sent *Sent, env wire.Envelope, start time.Time, connects int, echo chan struct{}) {
	defer func() { <-s.window }()
	defer func() {
		s.mu.Lock()
		delete(s.echoes, env.ID)
		s.mu.Unlock()
	}()
	e := s.entry(wire.EventSent).WithField(wire.FieldID, env.ID).WithField(wire.FieldSeq, env.Seq)
	if env.To != "" {
		e = e.WithField(wire.FieldTo, env.To)
	} else {
		e = e.WithField(wire.FieldRoom, env.Room)
	}
	timer := time.NewTimer(AckTimeout)
	defer timer.Stop()
	confirmedBy := ""
	sent.Err = s.waitAck(tok, timer, connects)
	s.mu.Lock()
	reconnected := s.connects != connects || !s.connected
	s.mu.Unlock()
	if tokDone(tok) && (sent.Err != nil || reconnected) {
		sent.Err = nil
		if echo != nil {
			confirmedBy = wire.ConfirmedByEcho
			select {
			case <-echo:
			case <-timer.C:
				sent.Err = fmt.Errorf("no echo of the message within %s after the connection broke", AckTimeout)
			case <-s.closing:
				sent.Err = errClosedUnacked
			}
		} else {
			confirmedBy = wire.ConfirmedByResend // paho keeps it and resends it after the reconnect
		}
	}
	if sent.Err != nil {
		e.Data[wire.FieldEvent] = wire.EventSendFailed
		e.WithField(wire.FieldError, sent.Err.Error()).Warn("send failed")
		close(sent.Done)
		return
	}
	ack := time.Now()
	if confirmedBy != "" {
		e = e.WithField(wire.FieldConfirmedBy, confirmedBy)
	}
	e.WithField(wire.FieldSentNS, env.SentNS).WithField(wire.FieldAckNS, ack.UnixNano()).
		WithField(wire.FieldAckUS, ack.Sub(start).Microseconds()).WithField(wire.FieldBytes, sent.Bytes).Info("sent")
	close(sent.Done)
	if sent.Queued {
		s.onEvent(Info{Text: "sent after reconnect: " + clip(env.Body)})
	}
}

var errClosedUnacked = errors.New("the node closed before the broker acknowledged the message")

func tokDone(tok mqtt.Token) bool {
	select {
	case <-tok.Done():
		return true
	default:
		return false
	}
}

func clip(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:40]) + "…"
	}
	return s
}

// Close publishes offline presence (if connected), waits up to ctx for
// in-flight publishes, disconnects, stops the pipeline and saves the state.
// It returns how many publishes were still unacknowledged (each is logged
// as send_failed): the user must hear of them.
func (s *Session) Close(ctx context.Context) (unacked int) {
	s.closeOnce.Do(func() { s.unacked = s.close(ctx) })
	return s.unacked
}

func (s *Session) close(ctx context.Context) (unacked int) {
	// Taking every window slot waits for the in-flight publishes and keeps
	// new ones out.
	taken := 0
drain:
	for ; taken < cap(s.window); taken++ {
		select {
		case s.window <- struct{}{}:
		case <-ctx.Done():
			break drain
		}
	}
	if unacked = cap(s.window) - taken; unacked > 0 {
		s.entry(wire.EventShutdown).WithField(wire.FieldCount, unacked).Warn("closing with publishes still awaiting PUBACK")
	}
	if s.Connected() {
		s.publishPresence(wire.Offline)
	}
	s.presenceMu.Lock()
	s.leaving = true // also when offline was not said: no "online again" now
	s.presenceMu.Unlock()
	close(s.closing)
	s.client.Disconnect(250)
	s.p.stop()
	if err := s.release(); err != nil {
		s.entry(wire.EventShutdown).WithField(wire.FieldError, err.Error()).Warn("release the state dir")
	}
	s.entry(wire.EventShutdown).Info("shutdown")
	return unacked
}
