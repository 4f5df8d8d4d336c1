package session

import (
	"errors"
	"fmt"
	"strings"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/distchat/distchat/chatnode/nodelog"
)

// ErrRefused is wrapped by every RefusedError: the broker answered the
// CONNECT with a refusal, so retrying with the same settings cannot help.
var ErrRefused = errors.New("refused by the broker")

// RefusedError is a CONNACK refusal. The session stops connecting on one:
// every retry would cost the broker a password check and end the same way.
type RefusedError struct {
	Broker string
	Code   byte  // the CONNACK return code
	Reason error // paho's error for the code (packets.ErrorRefused…)
}

// Error is the one line the user reads: what to fix, not the code.
func (e *RefusedError) Error() string {
	for _, r := range refusals {
		if r.code == e.Code {
			return fmt.Sprintf(r.text, e.Broker)
		}
	}
	return fmt.Sprintf("broker %s refused the connection: %v", e.Broker, e.Reason)
}

// Unwrap makes errors.Is match both ErrRefused and paho's error.
func (e *RefusedError) Unwrap() []error { return []error{ErrRefused, e.Reason} }

// UnreachableError says the first connection attempts failed before any
// CONNACK (no broker listening, a wrong host); the session keeps trying.
type UnreachableError struct {
	Broker string
	Err    error
}

// Error names the broker, or the list, and why it could not be reached.
func (e *UnreachableError) Error() string {
	if strings.Contains(e.Broker, ",") { // a broker list: paho's error is the last broker's
		return "cannot reach any broker of " + e.Broker + " (last: " + e.Err.Error() + ")"
	}
	// The dialer names the broker already ("connect to URL: …").
	why := strings.TrimPrefix(e.Err.Error(), "connect to "+e.Broker+": ")
	return "cannot reach broker at " + e.Broker + ": " + why
}

// Unwrap makes errors.Is see the dialer's error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// ConnectFailed reports that the node is not getting connected: once while
// its first attempts fail (Final false), or when the broker refused it
// (Final true, Err a *RefusedError: the node should stop too).
type ConnectFailed struct {
	Err   error
	Final bool
}

func (ConnectFailed) isEvent() {}

// refusals are the CONNACK refusals classify knows: paho's error, the code
// and what the user reads (with the broker).
var refusals = []struct {
	reason error
	code   byte
	text   string
}{
	{packets.ErrorRefusedBadProtocolVersion, packets.ErrRefusedBadProtocolVersion, "broker %s does not speak MQTT 3.1.1"},
	{packets.ErrorRefusedIDRejected, packets.ErrRefusedIDRejected, "client id rejected by broker %s"},
	{packets.ErrorRefusedBadUsernameOrPassword, packets.ErrRefusedBadUsernameOrPassword, "wrong user or password (broker %s)"},
	{packets.ErrorRefusedNotAuthorised, packets.ErrRefusedNotAuthorised,
		"not authorized by broker %s (the client id may belong to another user, or the user may not publish its presence)"},
}

// classify turns a failed connection attempt's error into a *RefusedError
// (by the broker last dialed) or an *UnreachableError (no broker answered).
func classify(brokers, last string, err error) error {
	for _, r := range refusals {
		if errors.Is(err, r.reason) {
			return &RefusedError{Broker: last, Code: r.code, Reason: r.reason}
		}
	}
	// paho wraps network failures as "network Error : <cause>": keep the cause.
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := multi.Unwrap(); len(errs) > 0 && errors.Is(errs[0], packets.ErrorNetworkError) {
			err = errs[len(errs)-1]
		}
	}
	return &UnreachableError{Broker: brokers, Err: err}
}

// onConnectNotification is paho's hook for every connection attempt, on its
// connect goroutine. A refusal stops the client; failures before the first
// connection are reported once.
func (s *Session) onConnectNotification(_ mqtt.Client, n mqtt.ConnectionNotification) {
	if b, ok := n.(mqtt.ConnectionNotificationBroker); ok {
		s.mu.Lock()
		s.link.attempting = b.Broker.String()
		s.mu.Unlock()
		return
	}
	f, ok := n.(mqtt.ConnectionNotificationFailed)
	if !ok || f.Reason == nil {
		return
	}
	err := classify(s.cfg.Broker.String(), locked(s, func() string { return s.link.attempting }), f.Reason)
	if refused, ok := err.(*RefusedError); ok {
		s.refuse(refused)
		return
	}
	s.mu.Lock()
	first := s.link.connects == 0 && !s.link.toldUnreachable
	s.link.toldUnreachable = true
	s.link.lastConnErr = err
	s.mu.Unlock()
	if !first {
		return
	}
	s.entry(nodelog.EventConnectFailed).WithField(nodelog.FieldBroker, s.cfg.Broker.String()).WithError(err).
		Info("cannot reach the broker; still trying") // the node tells the user itself
	s.onEvent(ConnectFailed{Err: err})
}

// refuse records the broker's refusal, tells the user and stops paho's
// retries (Disconnect on a goroutine: it waits for this one).
func (s *Session) refuse(err *RefusedError) {
	s.mu.Lock()
	first := s.link.refusedErr == nil
	if first {
		s.link.refusedErr = err
	}
	s.mu.Unlock()
	if !first {
		return
	}
	go s.client.Disconnect(0)
	s.entry(nodelog.EventConnectRefused).WithField(nodelog.FieldBroker, err.Broker).WithError(err).
		Error("the broker refused the connection; not retrying")
	s.onEvent(ConnectFailed{Err: err, Final: true}) // before the node stops on Refused
	close(s.link.refused)
}

// Refused is closed when the broker refused the connection (see Err).
func (s *Session) Refused() <-chan struct{} { return s.link.refused }

// Err is why the session is not connected: the broker's *RefusedError, or
// while it has never connected the last *UnreachableError, else nil.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.link.refusedErr != nil:
		return s.link.refusedErr
	case s.link.connects == 0 && s.link.lastConnErr != nil:
		return s.link.lastConnErr
	}
	return nil
}

// EverConnected reports whether a connection was ever up.
func (s *Session) EverConnected() bool { return locked(s, func() bool { return s.link.connects > 0 }) }
