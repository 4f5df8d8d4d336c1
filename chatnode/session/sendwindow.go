package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/distchat/distchat/broker/wire"
	"github.com/distchat/distchat/chatnode/nodelog"
)

// AckTimeout is how long a publish may wait for its PUBACK before the node
// reports it as failed and frees its window slot. paho keeps the message and
// still sends it after a reconnect; the report says so.
var AckTimeout = 5 * time.Minute

// outbox is the session's sending job, the send window: at most cfg.Window
// QoS 1 publishes await their PUBACK (the broker's in-flight quota drops
// silently beyond it). Send takes a slot of window (a semaphore, no lock held
// while it waits), then numbers and hands the message to paho under sendMu;
// awaitAck gives the slot back when the PUBACK (or, after a broken
// connection, the message's echo) comes. Lock order: a window slot, then
// sendMu, then Session.mu.
type outbox struct {
	window chan struct{} // one element per publish awaiting its PUBACK
	// sendMu is held from numbering a message (convSeq) to handing it to
	// paho, so that each conversation's seq order is its publish order.
	sendMu sync.Mutex
	ids    atomic.Uint64 // the last message id's counter
	// convSeq is the last seq per conversation; Session.mu guards it.
	convSeq map[string]uint64
	// echoes are closed when the node receives its own room message back:
	// the proof that the broker stored it when the connection broke while it
	// was in flight (paho's token then completes on the resend, or fails on
	// the write, never on the PUBACK). Session.mu guards it.
	echoes map[string]chan struct{}
}

func newOutbox(window int) outbox {
	return outbox{window: make(chan struct{}, window), convSeq: map[string]uint64{}, echoes: map[string]chan struct{}{}}
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
	env, topic, conv, err := s.envelope(o)
	if err != nil {
		return nil, err
	}
	if n := max(o.Size, len(o.Body)); n > s.cfg.MaxPayload {
		// Too large whatever its number: said before waiting for a slot
		// (publish checks the exact encoded size).
		return nil, fmt.Errorf("%w: at least %d bytes encoded, the limit is %d", ErrTooLarge, n, s.cfg.MaxPayload)
	}
	if err := s.waitFirstUp(ctx); err != nil {
		return nil, err
	}
	// The slot is taken before sendMu, so a Send waiting for the window
	// holds no lock and its ctx still ends the wait.
	select {
	case s.out.window <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("send: %w", ctx.Err())
	case <-s.closing:
		return nil, errors.New("send: the session is closed")
	}
	sent, err := s.publish(env, topic, conv, o.Size)
	if err != nil {
		<-s.out.window
		return nil, err
	}
	return sent, nil
}

// envelope builds the envelope of o (without its sequence number and id)
// and the topic and conversation it goes to.
func (s *Session) envelope(o Outgoing) (env wire.Envelope, topic, conv string, err error) {
	env = wire.Envelope{V: wire.Version, Kind: o.Kind, Room: o.Room, To: o.To, From: s.me, Boot: s.boot, SentNS: o.SentNS, Body: o.Body}
	if o.To != "" {
		if err := wire.ValidateName("user", o.To); err != nil {
			return env, "", "", err
		}
		env.Room = ""
		return env, wire.DMTopic(o.To, s.me), "@" + o.To, nil
	}
	if err := wire.ValidateName("room", o.Room); err != nil {
		return env, "", "", err
	}
	return env, wire.RoomTopic(o.Room, s.me), o.Room, nil
}

// waitFirstUp holds a clean session's first message until its first
// connection: paho wipes what a clean session published before it
// (ConnectRetry stores it, the CONNACK resets the store).
func (s *Session) waitFirstUp(ctx context.Context) error {
	if !s.ident.clean {
		return nil
	}
	select {
	case <-s.link.firstUp:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("send: not connected yet: %w", ctx.Err())
	case <-s.link.refused:
		return fmt.Errorf("send: %w", s.Err())
	case <-s.closing:
		return errors.New("send: the session is closed")
	}
}

// publish numbers env in its conversation, encodes it (padded to size)
// and hands it to the client, holding a window slot. sendMu is held from
// numbering to the hand-over so that sequence order is publish order;
// client.Publish only queues the packet, it does not wait for the network.
func (s *Session) publish(env wire.Envelope, topic, conv string, size int) (*Sent, error) {
	s.out.sendMu.Lock()
	defer s.out.sendMu.Unlock()
	s.mu.Lock()
	seq := s.out.convSeq[conv] + 1
	s.mu.Unlock()
	env.Seq = seq
	env.ID = s.me + "-" + strconv.FormatInt(s.boot, 36) + "-" + strconv.FormatUint(s.out.ids.Add(1), 36)
	if env.SentNS == 0 {
		env.SentNS = time.Now().UnixNano()
	}
	payload, err := env.EncodePadded(size)
	if err != nil {
		return nil, err
	}
	if len(payload) > s.cfg.MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes encoded, the limit is %d", ErrTooLarge, len(payload), s.cfg.MaxPayload)
	}
	var echo chan struct{}
	s.mu.Lock()
	s.out.convSeq[conv] = seq
	queued := !s.link.connected
	connects := s.link.connects
	if env.To == "" {
		echo = make(chan struct{})
		s.out.echoes[env.ID] = echo
	}
	s.mu.Unlock()
	sent := &Sent{ID: env.ID, Seq: seq, Bytes: len(payload), Queued: queued, Done: make(chan struct{})}
	start := time.Now()
	tok := s.client.Publish(topic, 1, false, payload)
	go s.awaitAck(tok, sent, env, start, connects, echo)
	return sent, nil
}

// awaitingEcho reports whether the node still waits for id's echo.
func (s *Session) awaitingEcho(id string) bool {
	return locked(s, func() bool { _, ok := s.out.echoes[id]; return ok })
}

// echoed reports that the node received its own message id back.
func (s *Session) echoed(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.out.echoes[id]; ok {
		close(ch)
		delete(s.out.echoes, id)
	}
}

// awaitAck waits (bounded) for a publish token, frees the window slot and
// logs the outcome. A token that completes after the connection broke says
// nothing about the PUBACK (it fails on the broken write although paho keeps
// the message and resends it, or completes on the resend), so then a room
// message counts as sent when its echo arrives; for a direct message, which
// has no echo, the log says it is in paho's hands (confirmed_by: resend).
func (s *Session) awaitAck(tok mqtt.Token, sent *Sent, env wire.Envelope, start time.Time, connects int, echo chan struct{}) {
	defer func() {
		s.mu.Lock()
		delete(s.out.echoes, env.ID)
		s.mu.Unlock()
		<-s.out.window
	}()
	e := s.entry(nodelog.EventSent).WithField(nodelog.FieldID, env.ID).WithField(nodelog.FieldSeq, env.Seq)
	if env.To != "" {
		e = e.WithField(nodelog.FieldTo, env.To)
	} else {
		e = e.WithField(nodelog.FieldRoom, env.Room)
	}
	timer := time.NewTimer(AckTimeout)
	defer timer.Stop()
	confirmedBy := ""
	sent.Err = s.waitAck(tok, timer, connects)
	s.mu.Lock()
	reconnected := s.link.connects != connects || !s.link.connected
	s.mu.Unlock()
	if tokDone(tok) && (sent.Err != nil || reconnected) {
		sent.Err = nil
		if echo != nil {
			confirmedBy = nodelog.ConfirmedByEcho
			select {
			case <-echo:
			case <-timer.C:
				sent.Err = fmt.Errorf("no echo of the message within %s after the connection broke", AckTimeout)
			case <-s.closing:
				sent.Err = errClosedUnacked
			}
		} else {
			confirmedBy = nodelog.ConfirmedByResend // paho keeps it and resends it after the reconnect
		}
	}
	if sent.Err != nil {
		e.Data[nodelog.FieldEvent] = nodelog.EventSendFailed
		e.WithError(sent.Err).Warn("send failed")
		close(sent.Done)
		return
	}
	ack := time.Now()
	if confirmedBy != "" {
		e = e.WithField(nodelog.FieldConfirmedBy, confirmedBy)
	}
	e.WithField(nodelog.FieldSentNS, env.SentNS).WithField(nodelog.FieldAckNS, ack.UnixNano()).
		WithField(nodelog.FieldAckUS, ack.Sub(start).Microseconds()).WithField(nodelog.FieldBytes, sent.Bytes).Info("sent")
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
