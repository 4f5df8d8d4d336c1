package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	pebbledb "github.com/cockroachdb/pebble"
	mqtt "github.com/mochi-mqtt/server/v2"
	pebblestore "github.com/mochi-mqtt/server/v2/hooks/storage/pebble"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/sirupsen/logrus"

	"github.com/distchat/distchat/broker/cluster"
	"github.com/distchat/distchat/broker/logevent"
	"github.com/distchat/distchat/broker/netwait"
	"github.com/distchat/distchat/broker/roomlog"
	"github.com/distchat/distchat/config"
)

// Server is one broker node. Create it with New, then Start; Close stops it.
type Server struct {
	cfg          config.Broker
	log          *logrus.Logger
	mochi        *mqtt.Server
	events       *eventsHook
	auth         *authHook
	inflight     *inflightBytes
	roomLog      *roomlog.Hook
	sessions     *sessionStore         // nil without a data_dir
	node         *cluster.Node         // the embedded NATS server in cluster mode; nil otherwise
	logView      *cluster.LogStore     // the replicated room log in cluster mode; nil otherwise
	sessionMoves *cluster.SessionMoves // drops sessions that moved to another broker; cluster mode only
	retain       *retainGuard          // orders retained publishes and wildcard subscribes (retainguard.go)
	presence     *presenceHook         // stopShared ends its sharing in cluster mode (nil otherwise)
	stopShared   context.CancelFunc
	sharing      sync.WaitGroup // the presence sharing's goroutine
	c            counters
	started      time.Time

	tcp      *listeners.Net
	tcpGuard *guardedListener                                    // retries accept errors, limits connections; nil until Start
	listen   func(network, address string) (net.Listener, error) // net.Listen; tests inject accept errors
	wsAddr   string
	httpLn   net.Listener
	httpSrv  *http.Server
	httpWG   sync.WaitGroup // the HTTP server's goroutine

	closeOnce sync.Once
	closeErr  error
}

// New builds a broker from a validated configuration: capabilities, hooks,
// storage and listeners. Nothing is served until Start.
func New(cfg config.Broker, log *logrus.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, listen: net.Listen}
	base := log.WithField("component", "broker")
	caps := capabilities(cfg.Limits)
	s.events = &eventsHook{log: base, c: &s.c, maxExpiry: caps.MaximumMessageExpiryInterval}

	s.mochi = mqtt.New(&mqtt.Options{
		Capabilities: caps,
		InlineClient: true, // the room log answers catch-up requests through it
		Logger: newSlogBridge(log, func(client, topic string, id uint16, cause string) {
			s.events.drop(client, topic, cause)
			if cause == DropPacketTooLarge {
				s.forgetInflight(client, id)
			}
		}),
	})
	s.auth = newAuthHook(cfg.Auth, cfg.Open(), base, &s.c)
	s.inflight = newInflightBytes(cfg.Limits.MaxInflightBytes, cfg.Limits.MaxInflightBytesTotal)
	s.auth.inflight = s.inflight
	s.auth.dropped = func(client, topic string) { s.events.drop(client, topic, dropInflightBytes) }
	s.auth.sessions = s.mochi.Clients
	s.presence = newPresenceHook()
	s.retain = newRetainGuard() // before the room log: cluster presence publishes through it
	hooks := append([]mqtt.Hook{s.auth, s.inflight, s.events}, s.mqtt5Hooks()...)
	if err := s.addHooks(append(hooks, s.presence)...); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" {
		base.WithField("event", logevent.NoPersistence).Warn("no data_dir: sessions, queued messages and the room log live in memory and are lost on restart")
	} else if err := s.addStorage(); err != nil {
		return nil, err
	}
	if cfg.RoomLog.Enabled {
		if err := s.addRoomLog(); err != nil {
			return nil, err
		}
	} else {
		base.WithField("event", logevent.RoomLogOff).Warn("room log disabled: delivery is hop-by-hop QoS 1 only and can lose messages")
	}
	// Added last: it holds its guard from the end of OnPublish on.
	if err := s.addHooks(s.retain); err != nil {
		return nil, errors.Join(err, s.mochi.Close(), s.closeNode())
	}
	if cfg.Open() {
		base.WithField("event", logevent.OpenMode).Warn("no users configured: development mode, anonymous clients allowed and identities not enforced")
	}
	return s, nil
}

// addHooks adds hooks to Mochi, which calls them in this order.
func (s *Server) addHooks(hooks ...mqtt.Hook) error {
	for _, h := range hooks {
		if err := s.mochi.AddHook(h, nil); err != nil {
			return fmt.Errorf("add %s hook: %w", h.ID(), err)
		}
	}
	return nil
}

// capabilities are Mochi's server capabilities for limits.
func capabilities(l config.Limits) *mqtt.Capabilities {
	caps := mqtt.NewDefaultServerCapabilities()  // a partial struct would refuse every client
	caps.MaximumInflight = uint16(l.MaxInflight) // Validate keeps these in range
	caps.MaximumClientWritesPending = int32(l.MaxClientWritesPending)
	caps.ReceiveMaximum = uint16(l.ReceiveMaximum)
	caps.MaximumPacketSize = uint32(l.MaxPacketSize)
	caps.MaximumMessageExpiryInterval = int64(l.MessageExpiry / time.Second)
	caps.MaximumSessionExpiryInterval = uint32(min(int64(l.SessionExpiry/time.Second), int64(^uint32(0))))
	return caps
}

// addRoomLog adds the room log hook with the checks it asks the broker for.
func (s *Server) addRoomLog() error {
	h, err := s.attachRoomLog()
	if err != nil {
		return errors.Join(fmt.Errorf("room log: %w", err), s.mochi.Close(), s.closeNode())
	}
	h.SetReadCheck(s.auth.MayRead) // the inline client that answers catch-up skips ACLs
	if !s.cfg.Open() {
		h.SetUserCheck(s.auth.UserExists) // DMs to made-up users start no conversation
	}
	s.roomLog = h
	if s.sessions != nil { // persistent sessions get their chat messages back from the log
		s.sessions.marks = newMarksKeeper(h, s.mochi, filepath.Join(s.cfg.DataDir, marksFile), s.log.WithField("component", "sessions"))
	}
	return nil
}

func (s *Server) addStorage() error {
	dir := filepath.Join(s.cfg.DataDir, "sessions")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// Pebble is the only storage (Validate refuses others). No sync per
	// write: the store holds no chat messages (sessionStore).
	popts := &pebbledb.Options{Logger: s.log.WithField("component", "pebble")}
	opts := &pebblestore.Options{Path: dir, Mode: pebblestore.NoSync, Options: popts}
	s.sessions = newSessionStore(s.cfg.RoomLog.Enabled)
	if err := s.mochi.AddHook(s.sessions, opts); err != nil {
		return fmt.Errorf("open session store %s: %w", dir, err)
	}
	return nil
}

// Start opens the listeners and serves until Close. It returns once the
// broker accepts connections.
func (s *Server) Start(ctx context.Context) error {
	s.started = time.Now()
	ln, err := s.listen("tcp", s.cfg.TCP)
	if err != nil {
		return fmt.Errorf("listen mqtt %s: %w", s.cfg.TCP, err)
	}
	// Mochi sees each connection as a clientConn (clientconn.go).
	s.tcpGuard = s.guard(ln)
	s.tcp = listeners.NewNet("tcp", s.tcpGuard)
	if err := s.mochi.AddListener(s.tcp); err != nil {
		return errors.Join(fmt.Errorf("listen mqtt %s: %w", s.cfg.TCP, err), ln.Close())
	}
	if s.cfg.WS != "" {
		// Mochi's WebSocket listener binds later, in a goroutine, and only
		// logs a failure: bind here first so a busy port is a clear error
		// and port 0 becomes a real port (released just before Mochi binds).
		probe, err := net.Listen("tcp", s.cfg.WS)
		if err == nil {
			s.wsAddr = probe.Addr().String()
			err = probe.Close()
		}
		if err == nil {
			err = s.mochi.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: s.wsAddr}))
		}
		if err != nil {
			return fmt.Errorf("listen websocket %s: %w", s.cfg.WS, err)
		}
	}
	if s.cfg.HTTP != "" {
		ln, err := net.Listen("tcp", s.cfg.HTTP)
		if err != nil {
			return fmt.Errorf("listen http %s: %w", s.cfg.HTTP, err)
		}
		s.httpLn = ln
		s.httpSrv = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 5 * time.Second}
		s.httpWG.Go(func() {
			if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.WithError(err).Error("http listener failed")
			}
		})
	}
	if err := s.mochi.Serve(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if s.wsAddr != "" { // Mochi binds it in a goroutine: wait, so Start returns ready
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := netwait.Listening(wctx, s.wsAddr, nil)
		cancel()
		if err != nil {
			return fmt.Errorf("listen websocket %s: %w", s.wsAddr, err)
		}
	}
	s.log.WithFields(logrus.Fields{"event": logevent.Started, "tcp": s.Addr(), "ws": s.wsAddr, "http": s.HTTPAddr(),
		"data_dir": s.cfg.DataDir, "durability": s.cfg.Durability, "room_log": s.cfg.RoomLog.Enabled, "open_mode": s.cfg.Open(),
		"users": len(s.cfg.Auth.Users), "anonymous": s.cfg.Auth.Anonymous || s.cfg.Open(), "cluster_node": s.cfg.Cluster.Node, "procs": runtime.GOMAXPROCS(0)}).Info("broker started")
	return nil
}

// Addr is the MQTT TCP listener's real address (useful with port 0).
func (s *Server) Addr() string {
	if s.tcp == nil {
		return ""
	}
	return s.tcp.Address()
}

// WSAddr is the MQTT-over-WebSocket listener's address, or "" when it is off.
func (s *Server) WSAddr() string { return s.wsAddr }

// HTTPAddr is the HTTP listener's real address, or "" when it is off.
func (s *Server) HTTPAddr() string {
	if s.httpLn == nil {
		return ""
	}
	return s.httpLn.Addr().String()
}

// Close stops accepting, disconnects clients, flushes and closes storage and
// the room log. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			errs = append(errs, s.httpSrv.Shutdown(ctx))
			cancel()
			s.httpWG.Wait()
		}
		s.stopSharing()
		if s.logView != nil { // hand leaderships over: a planned stop costs no election
			s.logView.Handover(context.Background())
		}
		// Appends in flight finish on the new leaders while Mochi closes the
		// clients, for appendGrace; on the last broker of a cluster, with no
		// majority left to answer, they are abandoned at once.
		grace := appendGrace
		if s.node != nil && s.node.Routes() == 0 {
			grace = 0
		}
		abandon := time.AfterFunc(grace, s.stopClusterAppends)
		errs = append(errs, s.closeMochi(mochiCloseTimeout))
		abandon.Stop()
		s.stopClusterAppends()
		errs = append(errs, s.closeNode())
		s.closeErr = errors.Join(errs...)
		s.log.WithField("event", logevent.Stopped).Info("broker stopped")
	})
	return s.closeErr
}

// appendGrace is how long a stopping broker lets its clients' appends in
// flight finish before it abandons them (their publishers resend);
// mochiCloseTimeout bounds how long Close waits for Mochi to stop.
const (
	appendGrace       = 500 * time.Millisecond
	mochiCloseTimeout = 10 * time.Second
)

// ErrMochiCloseHang is in Close's error when Mochi did not stop in time:
// Mochi v2.7.9's Close can deadlock when a client connects or disconnects
// at that moment (its client list takes a read lock twice,
// mochi-mqtt/server#488). The broker still ends: closeMochi closes the
// room log itself (every acknowledged message is already in the OS).
var ErrMochiCloseHang = errors.New("mochi did not stop (a known deadlock in Mochi's Close, mochi-mqtt/server#488)")

// closeMochi stops Mochi, which closes the session store and the room log,
// or past timeout closes the room log itself and reports ErrMochiCloseHang.
func (s *Server) closeMochi(timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- s.mochi.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
	}
	err := fmt.Errorf("%w within %s; the room log is closed directly", ErrMochiCloseHang, timeout)
	if s.roomLog != nil {
		err = errors.Join(err, s.roomLog.Stop())
	}
	return err
}

// forgetInflight removes a QoS 1/2 message Mochi could not send from the
// client's in-flight set: Mochi leaves it there, holding a slot of
// limits.max_inflight, failing at each resend (stopping those behind it)
// and counted again when it expires.
func (s *Server) forgetInflight(client string, id uint16) {
	if id == 0 {
		return // QoS 0: never in flight
	}
	cl, ok := s.mochi.Clients.Get(client)
	if ok && cl.State.Inflight.Delete(id) {
		s.inflight.release(client, id) // Mochi calls no hook for this removal
		cl.State.Inflight.IncreaseSendQuota()
		atomic.AddInt64(&s.mochi.Info.Inflight, -1)
	}
}
