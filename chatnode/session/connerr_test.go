package session

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/distchat/distchat/broker/brokertest"
)

// TestRefusedStopsRetrying: a CONNACK refusal comes back from WaitConnected
// as a *RefusedError naming the reason, Refused closes, and paho ends its
// connect loop without another attempt: once the first Connect's token is
// done the loop is over, and the broker saw exactly one refused CONNECT.
func TestRefusedStopsRetrying(t *testing.T) {
	cfg := brokertest.Config(t)
	cfg.Auth.Users = brokertest.Users(t, map[string]string{"alice": "right", "bob": "bobs"}, "*")
	for _, tt := range []struct {
		name, password, clientID string
		code                     byte
		reason                   error
		says                     string
	}{
		{"wrong password", "s3cret-typo", "", packets.ErrRefusedBadUsernameOrPassword, packets.ErrorRefusedBadUsernameOrPassword, "wrong user or password"},
		{"id of another user", "right", "bob", packets.ErrRefusedNotAuthorised, packets.ErrorRefusedNotAuthorised, "not authorized"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := brokertest.Start(t, cfg)
			nc := nodeConfig(t, b.URL, "alice", "lobby")
			nc.Password, nc.ClientID = tt.password, tt.clientID
			got := newCollector()
			failed := make(chan ConnectFailed, 4)
			s, err := New(nc, testLogger(t, "alice"), Options{OnEvent: func(e Event) {
				if f, ok := e.(ConnectFailed); ok {
					failed <- f
				}
				got.onEvent(e)
			}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.Start(ctx)
			t.Cleanup(func() { s.Close(context.Background()) })
			err = s.WaitConnected(ctx)
			var refused *RefusedError
			if !errors.As(err, &refused) || refused.Code != tt.code || !errors.Is(err, ErrRefused) || !errors.Is(err, tt.reason) {
				t.Fatalf("WaitConnected: %v, want a refusal with code %d", err, tt.code)
			}
			if !strings.Contains(err.Error(), tt.says) || strings.Contains(err.Error(), tt.password) {
				t.Errorf("refusal reads %q, want %q and no password", err, tt.says)
			}
			select {
			case <-s.Refused():
			default:
				t.Error("Refused is not closed")
			}
			if f := <-failed; !f.Final || !errors.Is(f.Err, ErrRefused) {
				t.Errorf("event %+v, want a final refusal", f)
			}
			waitNotConnecting(t, s)
			if n := b.Stats(t).AuthFailures; n != 1 {
				t.Errorf("broker refused %d CONNECTs, want 1 (no retries)", n)
			}
		})
	}
}

// waitNotConnecting waits until paho has left its connect loop: the first
// Connect's token completes only when the loop ends (after the pause in
// which it would retry).
func waitNotConnecting(t *testing.T, s *Session) {
	t.Helper()
	if !s.link.connectTok.WaitTimeout(10 * time.Second) {
		t.Fatal("paho still connecting after the refusal")
	}
	if s.link.connectTok.Error() == nil {
		t.Error("the connect loop ended without an error after a refusal")
	}
}

// TestClassify: refusals keep their code, network failures read as the
// cause without paho's "network Error" prefix.
func TestClassify(t *testing.T) {
	cause := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	for _, tt := range []struct {
		brokers string
		in      error
		want    string
	}{
		{"tcp://h:1", packets.ErrorRefusedBadUsernameOrPassword, "wrong user or password (broker tcp://h:1)"},
		{"tcp://h:1", packets.ErrorRefusedNotAuthorised, "not authorized by broker tcp://h:1"},
		{"tcp://h:1", packets.ErrorRefusedIDRejected, "client id rejected by broker tcp://h:1"},
		{"tcp://h:1", fmt.Errorf("%w : %w", packets.ErrorNetworkError, cause), "cannot reach broker at tcp://h:1: " + cause.Error()},
		{"tcp://h:1", errors.New("i/o timeout"), "cannot reach broker at tcp://h:1: i/o timeout"},
		// A broker list: the refusal names the broker that refused, the
		// unreachable error the whole list and the last broker's cause.
		{"tcp://g:1,tcp://h:1", packets.ErrorRefusedBadUsernameOrPassword, "wrong user or password (broker tcp://h:1)"},
		{"tcp://g:1,tcp://h:1", fmt.Errorf("%w : %w", packets.ErrorNetworkError, cause), "cannot reach any broker of tcp://g:1,tcp://h:1 (last: " + cause.Error() + ")"},
	} {
		if got := classify(tt.brokers, "tcp://h:1", tt.in).Error(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("classify(%v) = %q, want %q…", tt.in, got, tt.want)
		}
	}
}
