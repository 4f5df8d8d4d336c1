package session

import (
	"errors"
	"slices"
	"testing"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// openClient is a paho client that reports its connection open or not.
type openClient struct {
	mqtt.Client
	open bool
}

func (c openClient) IsConnectionOpen() bool { return c.open }

// TestConnectionLossReportedOnce: paho's connection-lost handler runs on a
// goroutine of its own, beside the reconnect, so it may come before
// onReconnecting, after it, or after the next connection is up. Whichever
// comes first reports the loss of the broker the node was on, once; one
// that comes after the next connection is up changes nothing.
func TestConnectionLossReportedOnce(t *testing.T) {
	cause := errors.New("read: i/o timeout")
	cases := []struct {
		name    string
		events  func(s *Session)
		want    []string // the statuses reported after "up b1"
		up      bool     // connected at the end
		current string   // the broker the session is on at the end
	}{
		{"lost, then reconnecting", func(s *Session) {
			s.onConnectionLost(openClient{}, cause)
			s.onReconnecting(nil, nil)
		}, []string{"lost b1: " + cause.Error(), "reconnecting"}, false, ""},
		{"reconnecting, then lost", func(s *Session) {
			s.onReconnecting(nil, nil)
			s.onConnectionLost(openClient{}, cause)
		}, []string{"lost b1: " + errConnectionLost.Error(), "reconnecting"}, false, ""},
		{"lost only after the next connection is up", func(s *Session) {
			s.onReconnecting(nil, nil)
			up(s, "b2")
			s.onConnectionLost(openClient{open: true}, cause)
		}, []string{"lost b1: " + errConnectionLost.Error(), "reconnecting", "up b2"}, true, "b2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigConfig(t, "r1"))
			s := r.s
			up(s, "b1")
			r.got.mu.Lock()
			r.got.status = nil
			r.got.mu.Unlock()
			tc.events(s)
			var got []string
			r.got.mu.Lock()
			for _, st := range r.got.status {
				switch {
				case st.Connected:
					got = append(got, "up "+st.Broker)
				case st.Err != nil:
					got = append(got, "lost "+st.Broker+": "+st.Err.Error())
				case st.Reconnecting:
					got = append(got, "reconnecting")
				}
			}
			r.got.mu.Unlock()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("statuses %q, want %q", got, tc.want)
			}
			if s.Connected() != tc.up || s.broker() != tc.current {
				t.Fatalf("connected %v on %q, want %v on %q", s.Connected(), s.broker(), tc.up, tc.current)
			}
		})
	}
}

// up marks a new connection to broker up, as onConnect does once
// subscribed.
func up(s *Session, broker string) {
	s.mu.Lock()
	s.link.connects++
	s.link.attempting = broker
	s.mu.Unlock()
	s.onEvent(Status{Connected: true, Broker: s.connectedTo()})
	s.mu.Lock()
	s.link.connected = true
	s.mu.Unlock()
}
