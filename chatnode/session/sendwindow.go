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
// reports it failed and frees its slot; paho still resends it after a
// reconnect, and the report says so.
var AckTimeout = 5 * time.Minute

// outbox is the send window: at most cfg.Window QoS 1 publishes await their
// PUBACK, since the broker's in-flight quota drops silently beyond it.
// Lock order: a window slot, then sendMu, then Session.mu.
type outbox struct {
	window chan struct{} // a semaphore: one element per publish awaiting its PUBACK
	// sendMu guards numbering a message (convSeq) until paho has it, so
	// each conversation's seq order is its publish order.
	sendMu  sync.Mutex
	ids     atomic.Uint64     // the last message id's counter
	convSeq map[string]uint64 // the last seq per conversation; Session.mu guards it
	// echoes are closed when the node's own room message comes back: the
	// proof it was stored when the connection broke in flight (paho's
	// token then says nothing of the PUBACK). Session.mu guards it.
	echoes map[string]chan struct{}
}

// Outgoing is a message to send: to a Room or, with To set, a direct message.
type Outgoing struct {
	Room, To string
	Kind     string
	Body     string
	Size     int   // pads the encoded envelope up to this many bytes (load messages)
	SentNS   int64 // overrides the send time (the scheduled time in load runs)
}

// Sent tracks one published message. Done is closed when the broker
// acknowledged it (Err nil) or the send failed (Err set).
type Sent struct {
	ID     string
	Seq    uint64
	Bytes  int
	Queued bool // sent while disconnected: it goes out after the reconnect
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
	if n := max(o.Size, len(o.Body)); n > s.cfg.MaxPayload { // publish checks the exact size
		return nil, fmt.Errorf("%w: at least %d bytes encoded, the limit is %d", ErrTooLarge, n, s.cfg.MaxPayload)
	}
	if s.clean { // paho wipes what a clean session published before its first connection
		select {
		case <-s.link.firstUp:
		case <-ctx.Done():
			return nil, fmt.Errorf("send: not connected yet: %w", ctx.Err())
		case <-s.link.refused:
			return nil, fmt.Errorf("send: %w", s.Err())
		case <-s.closing:
			return nil, errors.New("send: the session is closed")
		}
	}
	select { // before sendMu: a Send waiting for a slot holds no lock
	case s.out.window <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("send: %w", ctx.Err())
	case <-s.closing:
		return nil, errors.New("send: the session is closed")
	}
	sent, err := s.publish(env, topic, conv, o.Size)
	if err != nil {
		<-s.out.window
	}
	return sent, err
}

// envelope builds o's envelope (but seq and id), topic and conversation.
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

// publish numbers env in its conversation, encodes it (padded to size) and
// hands it to the client (which only queues it), holding a window slot.
func (s *Session) publish(env wire.Envelope, topic, conv string, size int) (*Sent, error) {
	s.out.sendMu.Lock()
	defer s.out.sendMu.Unlock()
	env.Seq = locked(s, func() uint64 { return s.out.convSeq[conv] + 1 })
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
	s.out.convSeq[conv] = env.Seq
	queued := !s.link.connected
	connects := s.link.connects
	if env.To == "" {
		echo = make(chan struct{})
		s.out.echoes[env.ID] = echo
	}
	s.mu.Unlock()
	sent := &Sent{ID: env.ID, Seq: env.Seq, Bytes: len(payload), Queued: queued, Done: make(chan struct{})}
	start := time.Now()
	go s.awaitAck(s.client.Publish(topic, 1, false, payload), sent, env, start, connects, echo)
	return sent, nil
}

// awaitingEcho reports whether the node still waits for id's echo.
func (s *Session) awaitingEcho(id string) bool {
	return locked(s, func() bool { return s.out.echoes[id] != nil })
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
// nothing of the PUBACK: a room message then counts as sent when its echo
// comes, a direct message (no echo) as in paho's hands.
func (s *Session) awaitAck(tok mqtt.Token, sent *Sent, env wire.Envelope, start time.Time, connects int, echo chan struct{}) {
	defer func() {
		s.mu.Lock()
		delete(s.out.echoes, env.ID)
		s.mu.Unlock()
		<-s.out.window
	}()
	e := withConv(s.entry(nodelog.EventSent).WithField(nodelog.FieldID, env.ID).WithField(nodelog.FieldSeq, env.Seq), env.Room, env.To)
	timer := time.NewTimer(AckTimeout)
	defer timer.Stop()
	confirmedBy := ""
	sent.Err = s.waitAck(tok, timer, connects)
	reconnected := locked(s, func() bool { return s.link.connects != connects || !s.link.connected })
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
