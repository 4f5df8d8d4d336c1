// Package session is the chat node's MQTT layer: one paho client configured
// so that it does not lose messages (docs/mochi-and-paho.md), a bounded window of
// QoS 1 publishes, presence with a Last Will, and a single pipeline goroutine
// that turns at-least-once deliveries into an effectively-once, ordered stream
// (dedup by message id and room sequence, per-sender gap detection, room-order
// hold-back and catch-up from the broker's room log).
//
// The interactive UI and the load generator both sit on top of it, so both
// exercise exactly the same delivery path.
//
// Where things are: session.go connects and subscribes; sendwindow.go is the
// send window (Send, the PUBACK wait, sendMu); pipeline.go is the delivery
// goroutine and lists the files of its jobs: receive.go (dedup), order.go
// (room-order hold-back), gaps.go (where a gap is detected, the gap timer),
// catchup.go and catchupreply.go (sync requests, and where their replies are
// applied), positions.go (the state file), presence.go. The lock order is on
// Session.
package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
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
	// Via is nodelog.ViaLive, nodelog.ViaSync or nodelog.ViaHistory.
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

	// Record says what records a delivery for good, so that a node killed
	// (kill -9) and restarted on the same state dir shows nothing twice
	// and misses nothing (see RecordMode). It matters only with a state dir.
	Record RecordMode
	// FlushLog writes the log's buffered lines to cfg.Log (RecordLog).
	FlushLog func() error

	// clock is the pipeline's time source (tests drive it); nil is the
	// wall clock.
	clock clock
}

// RecordMode says what records a delivery for good: the position of each
// conversation in the state dir becomes durable together with it
// (positions.go).
type RecordMode int

const (
	// RecordState keeps the positions in the state file, written every
	// 200 ms: after a kill -9 the last moments may be shown again.
	RecordState RecordMode = iota
	// RecordJournal makes the Message event the record: OnEvent returns
	// once the message is shown, and its position is then appended to a
	// journal in the state dir (a small write per delivery).
	RecordJournal
	// RecordLog makes the "received" lines of the JSON log in cfg.Log the
	// record: the positions are saved only after the lines they cover are
	// flushed (Options.FlushLog), and recovered from the lines written
	// after the last save. No write per delivery.
	RecordLog
)

func (m RecordMode) String() string {
	switch m {
	case RecordState:
		return "state"
	case RecordJournal:
		return "journal"
	case RecordLog:
		return "log"
	}
	return "RecordMode(" + strconv.Itoa(int(m)) + ")"
}

// Session is one chat node's connection and delivery pipeline.
//
// Locks, in the order they may be taken (never the other way round): a
// send-window slot (s.window, a semaphore), sendMu, presenceMu, mu; then the
// leaf locks that are taken after no other and held for no I/O:
// presenceBook.mu and queue.mu. None is held across a wait for the network
// or for a window slot: paho's Publish and Subscribe only queue packets.
// Delivery state (conversations, dedup, requests) has no lock: it belongs to
// the pipeline goroutine (pipeline.go).
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
	// window is the send window (sendwindow.go): one element per publish
	// awaiting its PUBACK, cfg.Window at most.
	window chan struct{}
	// sendMu is held from numbering a message (convSeq) to handing it to
	// paho, so that each conversation's seq order is its publish order. It
	// is taken after a window slot, never while waiting for one.
	sendMu  sync.Mutex
	closing chan struct{}
	// closeOnce makes Close safe to call again (it reports the first
	// answer): its window drain must run once.
	closeOnce sync.Once
	unacked   int

	// mu guards the fields below it. It is held for no I/O and no wait;
	// it may be taken under sendMu.
	mu        sync.Mutex
	rooms     []string
	subLogged map[string]bool
	convSeq   map[string]uint64
	connected bool
	connects  int
	lostGen   int // the newest connection whose loss is marked (markLost)
	// brokers is the broker the connection is on (failover.go).
	brokers brokerState
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

	// book is everyone's last presence (presence.go; its own lock).
	book *presenceBook
	p    *pipeline
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
	pos, seenIDs, err := recoverPositions(opts, cfg, &state)
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
		book:      newPresenceBook(),
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
	clk := opts.clock
	if clk == nil {
		clk = wallClock{}
	}
	s.p = newPipeline(pipelineDeps{
		cfg: cfg, me: s.me, clientID: clientID, device: state.Device, boot: s.boot, log: log, clock: clk,
		emit: s.onEvent, sync: s, echoes: s, presence: s,
	}, pos, s.rooms, state.Convs)
	for _, id := range seenIDs {
		s.p.seen.add(id)
	}
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
		SetOrderMatters(false).     // handlers run concurrently; order comes from seq / room_seq
		SetStore(newResumeStore()). // paho's memory store keeping a PUBLISH apart from the one on the wire (resumestore.go)
		SetResumeSubs(false).       // we resubscribe in OnConnect ourselves
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
				s.log.WithField(nodelog.FieldEvent, nodelog.EventConnectionLost).WithError(err).Warn("connect failed")
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

func (s *Session) entry(event string) *logrus.Entry {
	return s.log.WithField(nodelog.FieldEvent, event)
}

func (s *Session) onConnect(c mqtt.Client) {
	s.mu.Lock()
	s.connects++
	n := s.connects
	rooms := slices.Clone(s.rooms)
	s.mu.Unlock()
	ev := nodelog.EventConnected
	if n > 1 {
		ev = nodelog.EventReconnected
	}
	broker := s.connectedTo()
	s.entry(ev).WithField(nodelog.FieldBroker, broker).WithField(nodelog.FieldClientID, s.clientID).Info(ev)
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
	// Up and subscribed: from here on what is published is kept (before
	// the pipeline asks the room log, so its requests go out now).
	s.firstUpOnce.Do(func() { close(s.firstUp) })
	s.publishPresence(wire.Online)
	s.p.do(func() { s.p.onConnected() })
	// Report before flagging connected, so whoever waits for the connection
	// sees the report first.
	s.onEvent(Status{Connected: true, Broker: broker})
	s.mu.Lock()
	s.connected = s.lostGen != n // lost while subscribing: the next connection reports
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
	e := s.entry(nodelog.EventSubscribed)
	if room != "" {
		e = e.WithField(nodelog.FieldRoom, room)
	} else {
		e = e.WithField(nodelog.FieldTo, to)
	}
	e.Info("subscribed")
}

func (s *Session) onConnectionLost(c mqtt.Client, err error) {
	gen := s.generation() // before asking paho: a newer connection may come up meanwhile
	broker, wasUp := s.brokerLost(gen, !c.IsConnectionOpen())
	s.entry(nodelog.EventConnectionLost).WithField(nodelog.FieldBroker, broker).WithError(err).Warn("connection lost")
	if wasUp {
		s.onEvent(Status{Err: err, Broker: broker})
	}
}

// onReconnecting runs before every reconnect attempt, on paho's reconnect
// goroutine, with paho's own options: it marks the lost connection down,
// if onConnectionLost has not yet, and orders the brokers for failover.
func (s *Session) onReconnecting(_ mqtt.Client, o *mqtt.ClientOptions) {
	broker, wasUp := s.brokerLost(s.generation(), true)
	s.reorderServers(o)
	if wasUp {
		s.onEvent(Status{Err: errConnectionLost, Broker: broker})
	}
	s.entry(nodelog.EventReconnecting).Info("reconnecting")
	s.onEvent(Status{Reconnecting: true})
}

// brokerLost marks connection gen down when current (markLost) and takes
// the pipeline offline if the node had reported it up. It returns the
// broker lost and whether the node had reported it up.
func (s *Session) brokerLost(gen int, current bool) (string, bool) {
	if !current {
		return s.lastLost(), false // a newer connection is up: only name the broker lost
	}
	broker, wasUp := s.markLost(gen)
	if wasUp {
		s.p.do(s.p.onDisconnected)
	}
	return broker, wasUp
}

// errConnectionLost is the loss reported when the reconnect notices it
// before paho's connection-lost handler (which logs the cause).
var errConnectionLost = errors.New("connection to the broker lost")

// handle is paho's publish handler. It stamps the receive time first, copies
// what it needs into the pipeline's queue and returns at once: paho PUBACKs
// after it returns, and it must never block the client.
func (s *Session) handle(_ mqtt.Client, m mqtt.Message) {
	recv := time.Now().UnixNano()
	s.p.in.push(inbound{topic: m.Topic(), payload: slices.Clone(m.Payload()), retained: m.Retained(), recvNS: recv})
}

// publishSync publishes a sync request for the pipeline without waiting
// (syncPublisher). A clean session sends none before its first connection:
// paho would wipe it then, and the pipeline asks again.
func (s *Session) publishSync(payload []byte) {
	select {
	case <-s.firstUp:
	default:
		if s.clean {
			return
		}
	}
	tok := s.client.Publish(wire.SyncTopic(s.me), 1, false, payload)
	go func() {
		select {
		case <-tok.Done():
			if err := tok.Error(); err != nil {
				s.log.WithField(nodelog.FieldEvent, nodelog.EventSync).WithError(err).Warn("sync request not sent")
			}
		case <-s.closing:
		}
	}()
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
	s.entry(nodelog.EventUnsubscribed).WithField(nodelog.FieldRoom, room).Info("unsubscribed")
	return nil
}

// History asks the room log for the last n messages of conv; they arrive as
// Messages with Via == nodelog.ViaHistory.
func (s *Session) History(conv string, n int) {
	s.p.do(func() { s.p.history(conv, n) })
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
		s.entry(nodelog.EventShutdown).WithField(nodelog.FieldCount, unacked).Warn("closing with publishes still awaiting PUBACK")
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
		s.entry(nodelog.EventShutdown).WithError(err).Warn("release the state dir")
	}
	s.entry(nodelog.EventShutdown).Info("shutdown")
	return unacked
}
