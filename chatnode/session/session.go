// Package session is the chat node's MQTT layer: one paho client set up so
// that it loses no messages (docs/mochi-and-paho.md), a bounded window of
// QoS 1 publishes, presence with a Last Will, and a single pipeline goroutine
// that turns at-least-once deliveries into an effectively-once, ordered
// stream. The interactive UI and the load generator both use it, so both
// exercise the same delivery path.
package session

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/chatnode/session/statedir"
	"github.com/distchat/distchat/config"
)

// Session is one chat node's connection and delivery pipeline, its state
// grouped by the job that owns it.
//
// Locks, in the order they may be taken (never the other way round): a
// send-window slot (out.window, a semaphore), out.sendMu, pres.mu, mu; then
// queue.mu, a leaf held for no I/O. None is held across a wait for the
// network or for a window slot: paho's Publish and Subscribe only queue
// packets. Delivery state has no lock: it belongs to the pipeline goroutine.
type Session struct {
	cfg      config.Node
	me       string // the MQTT username: the sender level of every topic
	boot     int64
	log      *logrus.Entry
	onEvent  func(Event)
	client   mqtt.Client
	closing  chan struct{}
	clientID string
	clean    bool         // the id is for this run only: a clean session
	release  func() error // gives the state dir's lock back after the last save
	// closeOnce runs the window drain once; later Closes return unacked.
	closeOnce sync.Once
	unacked   int

	// mu guards rooms, subLogged and the fields of link and out that say
	// so. It is held for no I/O and no wait; it may be taken under
	// out.sendMu.
	mu        sync.Mutex
	rooms     []string        // joined, in join order (rooms.go)
	subLogged map[string]bool // rooms and "@user" (the DM inbox) logged "subscribed"

	link link          // connection and failover (connect.go, with failover)
	out  outbox        // the send window (sendwindow.go)
	pres presenceState // presence (presence.go)
	p    *pipeline     // delivery, on its own goroutine (pipeline.go lists its files)
}

// Event is something the session reports to its user: a Message, Status,
// PresenceChange, Info or ConnectFailed.
type Event interface{ isEvent() }

// Message is a chat message ready to show, in display order.
type Message struct {
	Env     wire.Envelope
	Conv    string // the room name or the DM conversation key
	Private bool   // a direct message
	Via     string // nodelog.ViaLive, nodelog.ViaSync or nodelog.ViaHistory
	RecvNS  int64
	Bytes   int
}

// Status reports a change of the connection.
type Status struct {
	Connected    bool
	Reconnecting bool
	Err          error
	Broker       string // the broker connected to (Connected) or lost (Err set)
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
	// Record says what records a delivery for good, so a node killed and
	// restarted on its state dir shows nothing twice and misses nothing.
	Record RecordMode
	// FlushLog writes the log's buffered lines to cfg.Log (RecordLog).
	FlushLog func() error
	clock    clock // the pipeline's time source (tests drive it); nil is the wall clock
}

// RecordMode says what records a delivery for good, together with the
// conversation's position in the state dir (positions.go).
type RecordMode int

const (
	// RecordState keeps the positions in the state file, written every
	// 200 ms: after a kill -9 the last moments may be shown again.
	RecordState RecordMode = iota
	// RecordJournal makes the Message event the record: OnEvent returns
	// once the message is shown, and its position is then appended to a
	// journal in the state dir (a small write per delivery).
	RecordJournal
	// RecordLog makes the "received" lines of cfg.Log the record: the
	// positions are saved only after the lines they cover are flushed
	// (Options.FlushLog), and recovered from later lines. No write per
	// delivery.
	RecordLog
)

// New builds a session from a validated configuration. It does not connect.
func New(cfg config.Node, log *logrus.Entry, opts Options) (*Session, error) {
	release, err := statedir.Lock(cfg.StateDir, cfg.User)
	if err != nil {
		return nil, err
	}
	state, err := statedir.LoadDevice(cfg.StateDir, cfg.User)
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
		cfg: cfg, me: cfg.User, log: log, onEvent: opts.OnEvent, boot: cmp.Or(opts.Boot, time.Now().UnixNano()),
		closing: make(chan struct{}), clientID: clientID, clean: clean, release: release, subLogged: map[string]bool{},
		link: link{firstUp: make(chan struct{}), refused: make(chan struct{})},
		out:  outbox{window: make(chan struct{}, cfg.Window), convSeq: map[string]uint64{}, echoes: map[string]chan struct{}{}},
	}
	for _, r := range cfg.Rooms {
		if !slices.Contains(s.rooms, r) {
			s.rooms = append(s.rooms, r)
		}
	}
	if s.onEvent == nil {
		s.onEvent = func(Event) {}
	}
	s.p = newPipeline(pipelineDeps{
		cfg: cfg, me: s.me, clientID: clientID, boot: s.boot, log: log, clock: cmp.Or[clock](opts.clock, wallClock{}),
		emit: s.onEvent, publishSync: s.publishSync, echoed: s.echoed, awaitingEcho: s.awaitingEcho,
		recordPresence: s.recordPresence, ownDeviceLeft: func() { go s.onlineAgain() },
	}, pos, s.rooms, state.Convs)
	for _, id := range seenIDs {
		s.p.seen.add(id)
	}
	s.client = mqtt.NewClient(s.clientOptions())
	return s, nil
}

// resolveClientID picks this device's MQTT client id: -client-id when given,
// else "<user>-<device>" with the device id from the state dir, so each
// device of a user has its own persistent session (the broker reserves ids
// naming a user for that user, and a device id has no '-'). Without a state
// dir the id is "<user>-<random>" with a clean session: a persistent one
// under an id never used again would collect messages on the broker until
// it expires; catch-up from the room log covers the time away.
func resolveClientID(cfg config.Node, device string) (id string, clean bool, err error) {
	switch {
	case cfg.ClientID != "":
		return cfg.ClientID, false, nil
	case device != "":
		return cfg.User + "-" + device, false, nil
	}
	run, err := statedir.NewDeviceID()
	return cfg.User + "-" + run, true, err
}

// ClientID is this device's MQTT client id.
func (s *Session) ClientID() string { return s.clientID }

// locked runs f under s.mu and returns its result.
func locked[T any](s *Session, f func() T) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f()
}

func (s *Session) entry(event string) *logrus.Entry {
	return s.log.WithField(nodelog.FieldEvent, event)
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
	taken := 0 // every window slot taken waits for the in-flight publishes and keeps new ones out
drain:
	for ; taken < cap(s.out.window); taken++ {
		select {
		case s.out.window <- struct{}{}:
		case <-ctx.Done():
			break drain
		}
	}
	if unacked = cap(s.out.window) - taken; unacked > 0 {
		s.entry(nodelog.EventShutdown).WithField(nodelog.FieldCount, unacked).Warn("closing with publishes still awaiting PUBACK")
	}
	if s.Connected() {
		s.publishPresence(wire.Offline)
	}
	s.pres.mu.Lock()
	s.pres.leaving = true // also when offline was not said: no "online again" now
	s.pres.mu.Unlock()
	close(s.closing)
	s.client.Disconnect(250)
	close(s.p.quit) // the pipeline handles what is queued and saves the state
	<-s.p.stopped
	if err := s.release(); err != nil {
		s.entry(nodelog.EventShutdown).WithError(err).Warn("release the state dir")
	}
	s.entry(nodelog.EventShutdown).Info("shutdown")
	return unacked
}
