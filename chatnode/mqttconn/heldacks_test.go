package mqttconn

import (
	"sync"
	"testing"
	"time"

	"github.com/distchat/distchat/broker/ackhold"
)

// fakeTimer is an ack timer the test fires by hand.
type fakeTimer struct {
	mu      sync.Mutex
	f       func()
	stopped bool
}

func (f *fakeTimer) Stop() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	was := !f.stopped
	f.stopped = true
	return was
}

// fakeTimers records the timers a Conn arms.
type fakeTimers struct {
	mu     sync.Mutex
	armed  []*fakeTimer
	delays []time.Duration
}

func (ft *fakeTimers) afterFunc(d time.Duration, f func()) stopper {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	t := &fakeTimer{f: f}
	ft.armed = append(ft.armed, t)
	ft.delays = append(ft.delays, d)
	return t
}

// live returns the timers armed and not stopped.
func (ft *fakeTimers) live() []*fakeTimer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	var out []*fakeTimer
	for _, t := range ft.armed {
		t.mu.Lock()
		if !t.stopped {
			out = append(out, t)
		}
		t.mu.Unlock()
	}
	return out
}

func puback(id int) string { return string([]byte{0x40, 2, byte(id >> 8), byte(id)}) }

// TestHeldAcks: PUBACKs wait for the ack timer or for other bytes; other
// packets go out at once and take the held PUBACKs along.
func TestHeldAcks(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		fire   bool   // fire the ack timer after the writes
		want   string // the first write the flusher makes
		timers int    // live timers before it
	}{
		{"acks wait for the timer", []string{puback(1), puback(2), puback(3)}, true, puback(1) + puback(2) + puback(3), 1},
		{"a publish takes held acks along", []string{puback(1), puback(2), "PUBLISH"}, false, puback(1) + puback(2) + "PUBLISH", 0},
		{"a pingreq takes held acks along", []string{puback(7), "\xc0\x00"}, false, puback(7) + "\xc0\x00", 0},
		{"a non-ack of four bytes is not held", []string{"\x30\x02ab"}, false, "\x30\x02ab", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newGated()
			ft := &fakeTimers{}
			c := wrap(g, 5*time.Millisecond, ft.afterFunc)
			t.Cleanup(func() { closeReleasing(t, c, g) })
			for _, s := range tc.writes {
				write(t, c, s)
			}
			if n := len(ft.live()); n != tc.timers {
				t.Fatalf("%d live ack timers, want %d", n, tc.timers)
			}
			if tc.fire {
				select {
				case p := <-g.started:
					t.Fatalf("wrote %q before the ack timer fired", p)
				default:
				}
				ft.live()[0].f()
			}
			if p := g.next(t); string(p) != tc.want {
				t.Fatalf("first write %q, want %q", p, tc.want)
			}
			g.release <- nil
			if len(ft.delays) > 0 && ft.delays[0] != 5*time.Millisecond {
				t.Fatalf("ack timer armed for %v", ft.delays[0])
			}
		})
	}
}

// TestHeldAcksBounded: the ackhold.Max-th PUBACK goes out at once, with
// the ones held before it, without waiting for the timer.
func TestHeldAcksBounded(t *testing.T) {
	g := newGated()
	ft := &fakeTimers{}
	c := wrap(g, time.Hour, ft.afterFunc)
	t.Cleanup(func() { closeReleasing(t, c, g) })
	want := ""
	for i := range ackhold.Max {
		write(t, c, puback(i))
		want += puback(i)
	}
	if p := g.next(t); string(p) != want {
		t.Fatalf("wrote %d bytes, want the %d acks (%d bytes)", len(p), ackhold.Max, len(want))
	}
	g.release <- nil
	if n := len(ft.live()); n != 0 {
		t.Fatalf("%d ack timers still live after the acks went out", n)
	}
}

// TestCloseWritesHeldAcks: Close sends held PUBACKs without the timer.
func TestCloseWritesHeldAcks(t *testing.T) {
	g := newGated()
	ft := &fakeTimers{}
	c := wrap(g, time.Hour, ft.afterFunc)
	write(t, c, puback(1))
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	if p := g.next(t); string(p) != puback(1) {
		t.Fatalf("close wrote %q", p)
	}
	g.release <- nil
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// TestWrapWritesAcksAtOnce: with no ack delay nothing is held.
func TestWrapWritesAcksAtOnce(t *testing.T) {
	g := newGated()
	c := WrapHoldingAcks(g, 0)
	t.Cleanup(func() { closeReleasing(t, c, g) })
	write(t, c, puback(9))
	if p := g.next(t); string(p) != puback(9) {
		t.Fatalf("wrote %q", p)
	}
	g.release <- nil
}

// closeReleasing closes c, letting any last writes through.
func closeReleasing(t *testing.T, c *Conn, g *gated) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- c.Close() }()
	for {
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("close: %v", err)
			}
			return
		case <-g.started:
			g.release <- nil
		}
	}
}
