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
		act     func(s *LogStore, p *partition, stop context.CancelFunc) // runs while viewTail waits
		want    tail
		wantErr error
	}{
		{"the view takes the winner", time.Minute, func(s *LogStore, p *partition, _ context.CancelFunc) {
			s.advance(p, 8, "other", tail{8, 1}) // another conversation: keep waiting
			s.advance(p, 9, "dev", winner)
		}, winner, nil},
		{"nothing newer within the wait", 20 * time.Millisecond, func(*LogStore, *partition, context.CancelFunc) {}, known, nil},
		{"appends stop", time.Minute, func(_ *LogStore, _ *partition, stop context.CancelFunc) { stop() }, known, errStopping},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, stop := context.WithCancel(context.Background())
			t.Cleanup(stop)
			p := &partition{advanced: make(chan struct{})}
			s := &LogStore{tails: map[string]tail{"dev": known}, stopping: ctx}
			type result struct {
				t   tail
				err error
			}
			done := make(chan result, 1)
			go func() {
				got, err := s.viewTail("dev", p, known, tt.wait)
				done <- result{got, err}
			}()
			tt.act(s, p, stop)
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
	s := &LogStore{tails: map[string]tail{"dev": {9, 4}}, stopping: context.Background()}
	got, err := s.viewTail("dev", &partition{advanced: make(chan struct{})}, tail{7, 3}, 0)
	if err != nil || got != (tail{9, 4}) {
		t.Fatalf("viewTail = %+v, %v; want {9 4}, nil", got, err)
	}
}
