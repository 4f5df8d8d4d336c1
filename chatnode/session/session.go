// Package session is the chat node's MQTT layer: one paho client set up so
// that it loses no messages (docs/mochi-and-paho.md), a bounded window of
// QoS 1 publishes, presence with a Last Will, and a single pipeline goroutine
// that turns at-least-once deliveries into an effectively-once, ordered
// stream. The interactive UI and the load generator both use it, so both
// exercise the same delivery path. Its state is grouped by the job that
// owns it, one struct each (see Session).
package session

import (
	"cmp"
	"context"
	"errors"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
	"github.com/distchat/distchat/chatnode/session/statedir"
	"github.com/distchat/distchat/config"
)

// Session is one chat node's connection and delivery pipeline.
//
// Locks, in the order they may be taken (never the other way round): a
// send-window slot (out.window, a semaphore), out.sendMu, pres.mu, mu; then
// queue.mu, a leaf held for no I/O. None is held across a wait for the
// network or for a window slot: paho's Publish and Subscribe only queue
// packets. Delivery state has no lock: it belongs to the pipeline goroutine.
type Session struct {
	cfg     config.Node
	me      string // the MQTT username: the sender level of every topic
	boot    int64
	log     *logrus.Entry
	onEvent func(Event)
	client  mqtt.Client
	closing chan struct{}
	// closeOnce runs the window drain once; later Closes return unacked.
	closeOnce sync.Once
	unacked   int

	// mu guards the fields of link, member and out that say so. It is held
	// for no I/O and no wait; it may be taken under out.sendMu.
	mu sync.Mutex

	ident  identity      // the client id and the state dir's lock (identity.go)
	link   link          // connection and failover (connect.go)
	member membership    // the rooms joined (rooms.go)
	out    outbox        // the send window (sendwindow.go)
	pres   presenceState // presence (presence.go)
	p      *pipeline     // delivery, on its own goroutine (pipeline.go lists its files)
}

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
		cfg:     cfg,
		me:      cfg.User,
		log:     log,
		onEvent: opts.OnEvent,
		boot:    cmp.Or(opts.Boot, time.Now().UnixNano()),
		closing: make(chan struct{}),
		ident:   identity{clientID: clientID, clean: clean, release: release},
		link:    link{firstUp: make(chan struct{}), refused: make(chan struct{}), servers: parseServers(cfg.Broker)},
		member:  newMembership(cfg.Rooms),
		out:     outbox{window: make(chan struct{}, cfg.Window), convSeq: map[string]uint64{}, echoes: map[string]chan struct{}{}},
	}
	if s.onEvent == nil {
		s.onEvent = func(Event) {}
	}
	s.p = newPipeline(pipelineDeps{
		cfg: cfg, me: s.me, clientID: clientID, boot: s.boot, log: log, clock: cmp.Or[clock](opts.clock, wallClock{}),
		emit: s.onEvent, publishSync: s.publishSync, echoed: s.echoed, awaitingEcho: s.awaitingEcho,
		recordPresence: s.recordPresence, ownDeviceLeft: func() { go s.onlineAgain() },
	}, pos, s.member.rooms, state.Convs)
	for _, id := range seenIDs {
		s.p.seen.add(id)
	}
	s.client = mqtt.NewClient(s.clientOptions())
	return s, nil
}

// ClientID is this device's MQTT client id.
func (s *Session) ClientID() string { return s.ident.clientID }

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
	// Taking every window slot waits for the in-flight publishes and keeps
	// new ones out.
	taken := 0
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
	if err := s.ident.release(); err != nil {
		s.entry(nodelog.EventShutdown).WithError(err).Warn("release the state dir")
	}
	s.entry(nodelog.EventShutdown).Info("shutdown")
	return unacked
}
