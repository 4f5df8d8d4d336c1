package cluster

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestViewTailFollowsTheView: an append that lost the race for a room_seq
// learns the winning record from this broker's view as soon as the view
// takes it, not after a pause; it gives up after its wait with what it
// knew, and at once when appends stop.
func TestViewTailFollowsTheView(t *testing.T) {
	const returnWithin = 10 * time.Second // far below the minute-long waits
	known := tail{stream: 7, room: 3}
	winner := tail{stream: 9, room: 4}
	tests := []struct {
		name    string
		wait    time.Duration
		act     func(s *LogStore, stop context.CancelFunc) // runs while viewTail waits
		want    tail
		wantErr error
	}{
		{"the view takes the winner", time.Minute, func(s *LogStore, _ context.CancelFunc) {
			s.advance(8, "other", tail{8, 1}) // another conversation: keep waiting
			s.advance(9, "dev", winner)
		}, winner, nil},
		{"nothing newer within the wait", 20 * time.Millisecond, func(*LogStore, context.CancelFunc) {}, known, nil},
		{"appends stop", time.Minute, func(_ *LogStore, stop context.CancelFunc) { stop() }, known, errStopping},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, stop := context.WithCancel(context.Background())
			t.Cleanup(stop)
			s := &LogStore{tails: map[string]tail{"dev": known}, advanced: make(chan struct{}), stopping: ctx}
			type result struct {
				t   tail
				err error
			}
			done := make(chan result, 1)
			go func() {
				got, err := s.viewTail("dev", known, tt.wait)
				done <- result{got, err}
			}()
			tt.act(s, stop)
			select {
			case r := <-done:
				if r.t != tt.want || !errors.Is(r.err, tt.wantErr) {
					t.Fatalf("viewTail = %+v, %v; want %+v, %v", r.t, r.err, tt.want, tt.wantErr)
				}
			case <-time.After(returnWithin):
				t.Fatalf("viewTail did not return within %s", returnWithin)
			}
		})
	}
}

// TestViewTailAlreadyNewer: a view that has the winner already answers
// without waiting at all.
func TestViewTailAlreadyNewer(t *testing.T) {
	s := &LogStore{tails: map[string]tail{"dev": {9, 4}}, advanced: make(chan struct{}), stopping: context.Background()}
	got, err := s.viewTail("dev", tail{7, 3}, 0)
	if err != nil || got != (tail{9, 4}) {
		t.Fatalf("viewTail = %+v, %v; want {9 4}, nil", got, err)
	}
}
